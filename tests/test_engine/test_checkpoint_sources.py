"""No checkpoint source runs code: every MMEngine scheme and every entry point.

A real HTTP server on 127.0.0.1 serves a crafted checkpoint (real weights plus an object
whose unpickling would create a marker file) and a clean one; the training and test
tools, the demo and the Python API must refuse the first and the marker never appears.
"""
import functools
import http.server
import os
import os.path as osp
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from ebtvision.apis import ModelLoadError, init_model
from ebtvision.engine import CheckpointLoadError
from ebtvision.engine import checkpoint as safe_checkpoint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class RunsCode:
    """Unpickling this would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def served(tmp_path, monkeypatch):
    """``(base_url, folder, marker)``: a folder served over HTTP on 127.0.0.1."""
    folder = tmp_path / 'served'
    folder.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))  # the download cache
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}', folder, tmp_path / 'pwned'
    finally:
        server.shutdown()
        server.server_close()


def crafted_checkpoint(path, marker, state_dict):
    torch.save({'state_dict': state_dict, 'meta': {'note': RunsCode(marker)}}, path)


def test_every_registered_scheme_loads_weights_only():
    ours = {safe_checkpoint.load_from_local_file, safe_checkpoint.load_from_url,
            safe_checkpoint.load_from_object_store, safe_checkpoint.load_from_model_zoo,
            safe_checkpoint.load_from_refused_scheme}
    schemes = CheckpointLoader._schemes
    assert {'', 'http://', 'https://', 'torchvision://', 'open-mmlab://', 'pavi://'} <= set(
        schemes)
    assert {prefix: loader for prefix, loader in schemes.items() if loader not in ours} == {}


def test_url_checkpoints_load_weights_only(served):
    base, folder, marker = served
    torch.save({'state_dict': {'w': torch.arange(3.0)}}, folder / 'good.pth')
    crafted_checkpoint(folder / 'evil.pth', marker, {'w': torch.ones(3)})
    loaded = CheckpointLoader.load_checkpoint(f'{base}/good.pth', map_location='cpu')
    torch.testing.assert_close(loaded['state_dict']['w'], torch.arange(3.0))
    with pytest.raises(CheckpointLoadError, match='weights-only'):
        CheckpointLoader.load_checkpoint(f'{base}/evil.pth')
    with pytest.raises(CheckpointLoadError, match='cannot be downloaded'):
        CheckpointLoader.load_checkpoint(f'{base}/missing.pth')
    assert not marker.exists()


def test_unsafe_and_unknown_schemes_are_refused_by_name():
    with pytest.raises(CheckpointLoadError, match="'pavi://', which is not supported"):
        CheckpointLoader.load_checkpoint('pavi://some/model')
    with pytest.raises(CheckpointLoadError, match="'ftp://', which is not supported"):
        CheckpointLoader.load_checkpoint('ftp://example/model.pth')
    with pytest.raises(CheckpointLoadError, match='names no model that torchvision:// knows'):
        CheckpointLoader.load_checkpoint('torchvision://no_such_model')


def run_tool(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, 'PYTHONPATH': ROOT})


@pytest.mark.slow
def test_tools_demo_and_api_refuse_a_crafted_url_checkpoint(served, tiny_config, tmp_path):
    base, folder, marker = served
    config = tiny_config('ebt')
    model = init_model(config, None)
    crafted_checkpoint(folder / 'evil.pth', marker, model.state_dict())
    torch.save({'state_dict': model.state_dict()}, folder / 'good.pth')
    url = f'{base}/evil.pth'
    image = str(folder / 'image.png')
    cv2.imwrite(image, np.full((16, 16, 3), 128, np.uint8))
    runs = {
        'train --resume URL': run_tool('tools/train.py', config, '--work-dir',
                                       str(tmp_path / 'w1'), '--resume', url),
        'train load_from=URL': run_tool('tools/train.py', config, '--work-dir',
                                        str(tmp_path / 'w2'), '--cfg-options',
                                        f'load_from={url}'),
        'test CONFIG URL': run_tool('tools/test.py', config, url, '--work-dir',
                                    str(tmp_path / 'w3')),
        'demo --checkpoint URL': run_tool('demo/denoise_image.py', image,
                                          '--config', config, '--checkpoint', url),
    }
    for what, result in runs.items():
        assert result.returncode != 0, what
        assert 'weights-only' in result.stderr, (what, result.stderr[-2000:])
        assert 'Traceback' not in result.stderr, (what, result.stderr[-2000:])
    # Nothing was trained on top of the refused checkpoint.
    assert not any(name.endswith('.pth') for name in os.listdir(tmp_path / 'w2'))
    with pytest.raises(ModelLoadError, match='weights-only'):
        init_model(config, url)
    assert not marker.exists()
    # The same route loads a clean checkpoint: the refusal is about the pickle.
    loaded = init_model(config, f'{base}/good.pth')
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
