"""demo/gradio_denoise.py: the real command served on localhost, driven by gradio_client
(and, where Chromium and Playwright are installed, by a headless browser)."""
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from conftest import smooth_image, write_denoiser

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'demo'))
import gradio_denoise  # noqa: E402

from ebtvision.apis.tiling import tile_starts  # noqa: E402

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get('EBTVISION_CHROMIUM', '/usr/bin/chromium')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def app(tmp_path_factory):
    """``python demo/gradio_denoise.py`` with a tiny EBT and DiT, on a free port."""
    folder = tmp_path_factory.mktemp('gradio_demo')
    (ebt_config, ebt_ckpt), (dit_config, dit_ckpt) = (write_denoiser(folder, k) for k in ('ebt', 'dit'))
    port = free_port()
    log = open(folder / 'app.log', 'w+')
    env = dict(os.environ, PYTHONPATH=ROOT, GRADIO_TEMP_DIR=str(folder / 'gradio_tmp'))
    process = subprocess.Popen(
        [sys.executable, osp.join(ROOT, 'demo', 'gradio_denoise.py'), '--config', ebt_config,
         '--checkpoint', ebt_ckpt, '--dit-config', dit_config, '--dit-checkpoint', dit_ckpt,
         '--port', str(port), '--max-upload-mb', '1'],
        cwd=str(folder), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    deadline = time.time() + 120
    while True:
        log.seek(0)
        output = log.read()
        if 'Running on local URL' in output:
            break
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f'the demo did not start:\n{output}')
        time.sleep(0.5)
    yield dict(url=url, port=port, folder=folder, output=output)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def test_help_says_how_to_get_a_model(capsys):
    with pytest.raises(SystemExit):
        gradio_denoise.parse_args(['--help'])
    assert 'python tools/train.py configs/quickstart/ebt_denoise_skimage.py' in \
        capsys.readouterr().out


def test_listens_on_localhost_only(app):
    assert f'http://127.0.0.1:{app["port"]}' in app['output']
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(('10.255.255.255', 1))  # UDP: sends nothing, picks the outward address
        address = probe.getsockname()[0]
    if address.startswith('127.'):
        pytest.skip('this machine has no address besides loopback')
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.settimeout(5)
        sock.connect((address, app['port']))


def test_denoise_request_through_gradio_client(app, tmp_path):
    from gradio_client import Client, handle_file
    clean = smooth_image(24, 30)
    path = str(tmp_path / 'photo.png')
    cv2.imwrite(path, clean[:, :, ::-1])
    client = Client(app['url'], verbose=False)
    noisy, ebt, dit, heat, table, gallery, _plot, details = client.predict(
        handle_file(path), 0.1, 3, False, 1, 2, 2, 0.0, api_name='/denoise')

    def read(file):
        return cv2.imread(file, cv2.IMREAD_UNCHANGED)[:, :, ::-1].astype(np.float64)

    assert read(noisy).shape == read(ebt).shape == read(dit).shape == (24, 30, 3)
    assert read(heat).shape == (24, 30, 3) and not np.array_equal(read(heat), read(ebt))
    tiles = len(tile_starts(24, 16, 4)) * len(tile_starts(30, 16, 4))  # overlap: tile / 4
    assert details['image'] == dict(name='photo.png', height=24, width=30, tiles=tiles)
    assert details['ebt']['steps'] == 3 and len(details['ebt']['energies']) == 4
    assert details['ebt']['candidates'] == 2 and details['ebt']['steps_used'] == 3
    assert details['dit']['steps'] == 2 and details['dit']['energies'] is None
    assert len(gallery) == 4 and gallery[1]['caption'].startswith('step 1: E ')
    # The numbers describe the images sent back (PNG, 8 bits: within rounding).
    for image, key in ((noisy, 'noisy_psnr'), (ebt, 'psnr')):
        mse = np.mean((read(image) - clean)**2)
        assert 10 * np.log10(255**2 / mse) == pytest.approx(details['ebt'][key], abs=0.1)
    assert f"{details['ebt']['psnr']:.2f}" in table and 'DiT (reverse steps)' in table
    # Adaptive stopping from the page: tiles stop before the budget of 8 steps.
    details = client.predict(handle_file(path), 0.1, 8, False, 1, 2, 1, 0.05,
                             api_name='/denoise')[-1]
    assert 1 <= details['ebt']['steps_used'] < 8


def test_bad_upload_gets_a_clear_message(app, tmp_path):
    from gradio_client import Client, handle_file
    client = Client(app['url'], verbose=False)
    bad = tmp_path / 'notes.png'
    bad.write_text('this is not an image')
    with pytest.raises(Exception, match='notes.png: OpenCV cannot decode it'):
        client.predict(handle_file(str(bad)), 0.1, 1, False, 0, 2, 1, 0.0, api_name='/denoise')
    big = tmp_path / 'big.png'
    big.write_bytes(os.urandom(2 * 1024 * 1024))  # over --max-upload-mb 1
    with pytest.raises(Exception, match='maximum file size'):
        client.predict(handle_file(str(big)), 0.1, 1, False, 0, 2, 1, 0.0, api_name='/denoise')


def test_missing_checkpoint_is_explained_in_the_page(tmp_path):
    import gradio as gr
    config, _ = write_denoiser(tmp_path, 'ebt')
    args = gradio_denoise.parse_args(['--config', config, '--checkpoint',
                                      str(tmp_path / 'nowhere.pth')])
    demo = gradio_denoise.create_demo(args)
    assert demo.ebt is None
    header = demo.header()
    assert 'nowhere.pth does not exist' in header
    assert 'python tools/train.py configs/quickstart/ebt_denoise_skimage.py' in header
    with pytest.raises(gr.Error, match='does not exist'):
        demo.denoise(None, 0.1, 1, False, 0)
    demo.build()  # the page still builds


@pytest.mark.skipif(not osp.isfile(CHROMIUM), reason=f'no Chromium at {CHROMIUM}')
def test_page_in_a_headless_browser(app, tmp_path):
    playwright = pytest.importorskip('playwright.sync_api')
    outside = []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=['--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--no-first-run'])
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 1000})
            page.on('request', lambda request: outside.append(request.url) if not
                    request.url.startswith((app['url'].rstrip('/'), 'data:', 'blob:')) else None)
            page.goto(app['url'])
            # Opening the page denoises the first bundled photo; then press Denoise.
            page.get_by_text('noisy input').first.wait_for(timeout=90_000)
            page.get_by_role('button', name='Denoise').click()
            page.get_by_text('step 1: E').first.wait_for(timeout=90_000)
            page.screenshot(path=str(tmp_path / 'page.png'), full_page=True)
            text = page.inner_text('body')
        finally:
            browser.close()
    assert outside == [], f'the page fetched from outside localhost: {outside}'
    assert 'EBT denoised' in text and 'DiT denoised' in text and 'PSNR' in text
    assert osp.getsize(tmp_path / 'page.png') > 10_000
    shutil.copy(tmp_path / 'page.png', app['folder'] / 'page.png')
