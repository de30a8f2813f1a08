"""demo/predict_video.py end to end: tiny EBT / Transformer++ on a generated video."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_VIDEO_MODEL, write_video
from mmengine.config import Config

from ebtvision.visualization.video import (CONTEXT_COLOR, PREDICTION_COLOR, TRUTH_COLOR,
                                           read_video_frames)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'demo'))
import predict_video  # noqa: E402

pytestmark = pytest.mark.slow

CONFIG = TINY_VIDEO_MODEL + """
_clip = dict(data_root='{root}', clip_len=5, time_between_frames=0.2, pipeline=_pipeline)
val_dataloader = dict(batch_size=2, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='VideoFolderDataset', time_range=(0.5, 1),
                                   clip_stride=2, test_mode=True, **_clip))
"""
HEIGHT = 64
# Two panels of 16x16 frames shown HEIGHT px high with a 4 px border each side; a 22 px
# label band above and a 6 px progress bar below.
WIDTH, FULL_HEIGHT = 2 * (HEIGHT + 8), 22 + HEIGHT + 8 + 6


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A 4 s video at 10 fps (20 frames every 0.2 s, 10 held out) and tiny checkpoints."""
    from ebtvision.registry import MODELS
    from ebtvision.utils import register_all_modules
    register_all_modules()
    root = tmp_path_factory.mktemp('predict_video')
    write_video(str(root / 'videos' / 'clip.mp4'), 40, fps=10.0, size=(32, 48))
    paths = {}
    for kind in ('ebt', 'tpp'):
        config = root / f'tiny_{kind}.py'
        config.write_text(CONFIG.format(kind=kind, root=root / 'videos'))
        torch.manual_seed(0)
        model = MODELS.build(Config.fromfile(str(config)).model)
        checkpoint = root / f'{kind}.pth'
        torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 1}}, checkpoint)
        paths[kind] = (str(config), str(checkpoint))
    return root, paths


def run_demo(*args):
    result = subprocess.run([sys.executable, 'demo/predict_video.py', *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, 'PYTHONPATH': ROOT})
    if result.returncode != 0:
        raise AssertionError(f'demo failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result.stdout


def decode_h264(path):
    """The demo's mp4 as a browser decodes it: H.264, yuv420p; RGB frames and the rate."""
    av = pytest.importorskip('av')
    with av.open(path) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ('h264', 'yuv420p')
        frames = np.stack([f.to_ndarray(format='rgb24') for f in container.decode(stream)])
    return frames, float(stream.average_rate)


def border_color(frame, x):
    """Mean colour of a panel's 4 px left border, away from the label band and bar."""
    return frame[40:80, x:x + 4].reshape(-1, 3).mean(axis=0)


def test_ebt_rollout_writes_side_by_side_mp4_plot_and_table(setup):
    root, paths = setup
    out = str(root / 'ebt' / 'rollout.mp4')
    # An odd height (65 + 22 + 8 + 6 = 101 rows) goes through the writer's even padding.
    stdout = run_demo(*paths['ebt'], '--context', '4', '--frames', '3', '--num-candidates',
                      '2', '--thinking-steps', '3', '--height', '65', '--out', out)
    frames, rate = decode_h264(out)
    panel = 64 + 8  # the 16x16 frames shown 65 px high: 64 px wide (even) plus borders
    assert frames.shape == (4 + 3, 102, 2 * panel, 3)
    assert rate == pytest.approx(5.0)  # 1 / time_between_frames
    np.testing.assert_array_equal(read_video_frames(out)['frames'].shape, frames.shape)
    body = frames[:, 22 + 4:22 + 4 + 65].astype(int)
    for index in range(4):  # context: the same real frame in both panels
        assert np.abs(border_color(frames[index], 0) - CONTEXT_COLOR).max() < 8
        assert np.abs(border_color(frames[index], panel) - CONTEXT_COLOR).max() < 8
        assert np.abs(body[index, :, 4:68] - body[index, :, panel + 4:panel + 68]).mean() < 3
    for index in range(4, 7):  # real future left (green), prediction right (orange)
        assert np.abs(border_color(frames[index], 0) - TRUTH_COLOR).max() < 8
        assert np.abs(border_color(frames[index], panel) - PREDICTION_COLOR).max() < 8
    assert osp.isfile(str(root / 'ebt' / 'rollout_energy.png'))
    metrics = json.load(open(root / 'ebt' / 'rollout_metrics.json'))
    assert len(metrics['energies']) == len(metrics['smooth_l1']) == 3
    # The clip starts where the validation range starts: half-way, at 2.0 s.
    assert metrics['frame_times'][0] == pytest.approx(2.0)
    assert all(v > 0 for v in metrics['copy_last_smooth_l1'])
    for line in ('energy', 'smooth-L1', 'copy-last', '+3', f'wrote {out}'):
        assert line in stdout


def test_transformer_pp_rollout_to_gif_defaults(setup):
    root, paths = setup
    out = str(root / 'tpp' / 'rollout.gif')
    stdout = run_demo(*paths['tpp'], '--height', str(HEIGHT), '--out', out)
    # Default context: clip_len - 1 = 4; 10 frames held out, so 6 (not 8) are predicted.
    assert 'predicting 6 instead of 8' in stdout
    video = read_video_frames(out)
    assert video['frames'].shape == (4 + 6, FULL_HEIGHT, WIDTH, 3)
    assert osp.isfile(str(root / 'tpp' / 'rollout_energy.png'))
    assert json.load(open(root / 'tpp' / 'rollout_metrics.json'))['energies'] is None


def test_too_short_video_is_a_clear_error(setup, capsys):
    root, paths = setup
    with pytest.raises(SystemExit) as error:
        predict_video.main([*paths['ebt'], '--context', '4', '--frames', '7', '--out',
                            str(root / 'short.mp4')])
    message = str(error.value)
    assert 'too short' in message and 'clip.mp4' in message
    assert '4 + --frames 7 = 11 frames' in message and '10 of them' in message
    assert not osp.exists(root / 'short.mp4')


def test_transformer_pp_refuses_self_verification(setup):
    _, paths = setup
    with pytest.raises(SystemExit, match='only EBTs have'):
        predict_video.main([*paths['tpp'], '--num-candidates', '2'])
    with pytest.raises(SystemExit, match='does not fit'):  # an EBT checkpoint for T++
        predict_video.main([paths['tpp'][0], paths['ebt'][1]])


def test_errors_compare_each_prediction_with_the_frame_it_predicts(setup):
    """Oracle and copy-last stand-ins for the rollout pin the frame alignment."""
    from ebtvision.registry import MODELS
    config, _ = setup[1]['ebt']
    args = predict_video.parse_args([config, 'unused.pth', '--context', '4', '--frames', '3'])
    cfg = Config.fromfile(config)
    item, info = predict_video.read_clip(args, *predict_video.val_dataset_cfg(cfg, config))
    assert (info['context'], info['frames']) == (4, 3)
    model = MODELS.build(cfg.model).eval()
    seen = {}
    encode = model.encode_inputs

    def remember(inputs, samples):
        seen['latents'] = encode(inputs, samples)
        return seen['latents']

    model.encode_inputs = remember
    # Oracle: the true next latents -> zero error, decoded frames equal the real ones.
    model.rollout = lambda real, n, **kw: (seen['latents'][:, real.shape[1]:][:, :n], None)
    oracle = predict_video.rollout(model, item, 4, 3, 1, None)
    assert oracle['errors'] == [0.0] * 3 and oracle['energies'] is None
    for index, frame in enumerate(oracle['prediction']):
        np.testing.assert_array_equal(frame, oracle['truth'][4 + index])
    assert min(oracle['copy_last_errors']) > 0
    # Repeating the last context frame scores exactly the copy-last baseline.
    model.rollout = lambda real, n, **kw: (real[:, -1:].expand(-1, n, *real.shape[2:]), None)
    copy_last = predict_video.rollout(model, item, 4, 3, 1, None)
    assert copy_last['errors'] == pytest.approx(copy_last['copy_last_errors'])
