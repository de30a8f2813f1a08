"""tools/extract_latents.py on a tiny generated video folder."""
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch

from conftest import write_video
from ebtvision.datasets import LatentClipDataset, VideoFolderDataset, read_index
from ebtvision.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'extract_latents.py')

CONFIG = """
default_scope = 'ebtvision'
model = dict(type='EBTNextFrame', encoder=dict(type='PixelPatchEncoder', patch_size=4))
_clip = dict(type='VideoFolderDataset', data_root='{root}', clip_len=3,
             time_between_frames=0.1, short_video='pad')
_train_pipeline = [dict(type='LoadVideoClip'), dict(type='VideoResize', short_side=16),
                   dict(type='VideoRandomCrop', size=16), dict(type='PackVideoInputs')]
_val_pipeline = [dict(type='LoadVideoClip'), dict(type='VideoResize', short_side=16),
                 dict(type='VideoCenterCrop', size=16), dict(type='PackVideoInputs')]
train_dataloader = dict(batch_size=2, dataset=dict(time_range=(0, 0.8),
                                                   pipeline=_train_pipeline, **_clip))
val_dataloader = dict(batch_size=2, dataset=dict(time_range=(0.8, 1), test_mode=True,
                                                 pipeline=_val_pipeline, **_clip))
test_dataloader = val_dataloader
"""


@pytest.fixture
def config(tmp_path):
    root = tmp_path / 'videos'
    write_video(str(root / 'a.avi'), 30, fps=30.0, size=(24, 32), seed=1)
    write_video(str(root / 'b.avi'), 20, fps=20.0, size=(24, 32), seed=2)
    write_video(str(root / 'c.avi'), 16, fps=20.0, size=(24, 32), seed=3)
    path = tmp_path / 'tiny_video.py'
    path.write_text(CONFIG.format(root=root))
    return str(path), str(root)


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, 'PYTHONPATH': ROOT})


def run_in_process(*args):
    """Run the tool's main() here (no interpreter start-up); return its exit message."""
    module = runpy.run_path(TOOL)
    try:
        module['main'](list(args))
    except SystemExit as info:
        return str(info.code)
    return ''


@pytest.mark.slow
def test_extract_resume_and_read_back(config, tmp_path):
    cfg, root = config
    out = str(tmp_path / 'cache')
    common = ['--out', out, '--shard-size', '2', '--num-workers', '0', '--no-progress']
    first = run_tool(cfg, *common, '--max-shards', '1')
    assert first.returncode == 0, first.stderr[-3000:]
    assert 'VideoRandomCrop(size=(16, 16)) cached as VideoCenterCrop' in first.stdout
    assert 'still to write: run the same command again' in first.stdout
    assert sorted(n for n in os.listdir(out) if n.endswith('.pt')) == ['shard_00000.pt']
    second = run_tool(cfg, *common)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'cache complete for train, val, test' in second.stdout
    index = read_index(out)
    # one encoding per video serves the train and the held-out time ranges
    assert len(index['shards']) == 2 and len(index['videos']) == 3
    assert index['splits']['train'] == index['splits']['val'] == index['splits']['test']
    assert index['latent_shape'] == [48, 4, 4] and index['frame_size'] == [16, 16]
    assert index['encoder'] == dict(type='PixelPatchEncoder', patch_size=4)

    val_pixels = VideoFolderDataset(
        root, clip_len=3, time_between_frames=0.1, time_range=(0.8, 1), test_mode=True,
        pipeline=[dict(type='LoadVideoClip'), dict(type='VideoResize', short_side=16),
                  dict(type='VideoCenterCrop', size=16), dict(type='PackVideoInputs')])
    val_latents = LatentClipDataset(out, split='val', clip_len=3, time_range=(0.8, 1),
                                    test_mode=True)
    encoder = MODELS.build(dict(type='PixelPatchEncoder', patch_size=4))
    assert len(val_pixels) == len(val_latents) == 3
    for i in range(3):
        pix, lat = val_pixels[i], val_latents[i]
        assert lat['data_samples'].frame_indices == pix['data_samples'].frame_indices
        with torch.no_grad():
            expected = encoder.encode(pix['inputs'].float() / 127.5 - 1.0)
        torch.testing.assert_close(lat['inputs'], expected, rtol=0, atol=1e-6)
    train = LatentClipDataset(out, split='train', clip_len=3, time_range=(0, 0.8))
    assert train[0]['inputs'].shape == (3, 48, 4, 4)


def test_clear_errors(config, tmp_path):
    cfg, root = config
    out = str(tmp_path / 'cache')
    assert 'complete' not in run_in_process(cfg, '--out', out, '--split', 'val',
                                            '--num-workers', '0', '--no-progress')
    # another storage dtype would mix latents: refused
    message = run_in_process(cfg, '--out', out, '--split', 'val', '--dtype', 'float16',
                             '--num-workers', '0', '--no-progress')
    assert message.startswith('error:') and "dtype: cache has 'float32', now 'float16'" in message
    # a random transform that has no deterministic counterpart cannot be cached
    random_cfg = tmp_path / 'random_crop.py'
    random_cfg.write_text(open(cfg).read().replace(
        "dict(type='VideoCenterCrop', size=16)", "dict(type='RandomCrop', size=8)"))
    message = run_in_process(str(random_cfg), '--out', out, '--split', 'val')
    assert 'random transform RandomCrop' in message and 'cannot be cached' in message
    message = run_in_process(cfg, '--split', 'val', '--cfg-options',
                             f'val_dataloader.dataset.data_root={tmp_path}/missing')
    assert 'data not found' in message and 'missing' in message
