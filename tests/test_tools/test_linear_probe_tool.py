"""tools/test.py runs linear probes: a trained tiny denoiser, random init, missing data."""
import json
import os.path as osp

import numpy as np
import pytest
from conftest import write_idx
from conftest import run_tool

pytestmark = pytest.mark.slow

PROBE_CONFIG = """
default_scope = 'ebtvision'
model = dict(type='LinearProbe', num_classes=2,
             backbone=dict(type='BidirectionalEBT', img_size=16, patch_size=8,
                           arch=dict(depth=1, num_heads=2, embed_dims=16)))
_pipeline = [dict(type='Resize', size=16, keep_ratio=True), dict(type='NormalizeToSymmetric'),
             dict(type='PackClassifyInputs')]
_loader = dict(batch_size=16, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(dataset=dict(type='IdxImageDataset', data_root='{root}', split='test',
                                    pipeline=_pipeline), **_loader)
test_evaluator = dict(type='AccuracyMetric', topk=(1, 2))
test_cfg = dict(type='LinearProbeLoop',
                train_dataloader=dict(dataset=dict(type='IdxImageDataset', data_root='{root}',
                                                   split='train', pipeline=_pipeline),
                                      **_loader),
                classifier=dict(epochs=20, batch_size=16))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
"""


def write_two_class_idx(root):
    """Dark vs bright 8x8 images (a linearly separable toy problem), idx format."""
    rng = np.random.default_rng(0)
    for prefix, count in (('train', 48), ('t10k', 24)):
        labels = (np.arange(count) % 2).astype(np.uint8)
        images = rng.integers(0, 100, (count, 8, 8)) + 150 * labels[:, None, None]
        write_idx(osp.join(root, f'{prefix}-images-idx3-ubyte.gz'), images.astype(np.uint8))
        write_idx(osp.join(root, f'{prefix}-labels-idx1-ubyte.gz'), labels)


def test_probe_of_a_trained_checkpoint_and_of_random_init(tiny_config, tmp_path):
    work = str(tmp_path / 'denoiser')
    run_tool('tools/train.py', tiny_config('ebt'), '--work-dir', work, '--cfg-options',
             'train_cfg.max_iters=2')
    data = tmp_path / 'idx'
    data.mkdir()
    write_two_class_idx(str(data))
    config = tmp_path / 'probe.py'
    config.write_text(PROBE_CONFIG.format(root=str(data)))
    for checkpoint in (osp.join(work, 'iter_2.pth'), 'none'):
        out = str(tmp_path / 'metrics.json')
        result = run_tool('tools/test.py', str(config), checkpoint, '--work-dir',
                          str(tmp_path / 'probe'), '--out', out)
        metrics = json.load(open(out))
        assert metrics['probe/top2'] == 100.0
        assert metrics['probe/top1'] >= 90.0, result.stdout[-2000:]
    assert osp.exists(str(tmp_path / 'probe' / 'probe_head.pth'))


def test_imagenet_probe_without_data_gives_one_clear_message(tmp_path):
    result = run_tool('tools/test.py', 'configs/linear_probe/ebt_imagenet_linear.py', 'none',
                      '--work-dir', str(tmp_path), check=False)
    assert result.returncode != 0
    assert 'data/imagenet' in result.stderr and 'fashion_mnist' in result.stderr
    assert 'Traceback' not in result.stderr
