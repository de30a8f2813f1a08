"""Shared fixtures: tiny generated images and tiny configs for end-to-end runs."""
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(autouse=True)
def _two_threads():
    # Keep each test's matmuls on the 2 cores CI has, without oversubscription.
    previous = torch.get_num_threads()
    torch.set_num_threads(min(2, previous))
    yield
    torch.set_num_threads(previous)


def write_image_folder(root: str, count: int, size: int = 24, seed: int = 0) -> str:
    """Write ``count`` smooth random colour PNGs into ``root``."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(osp.join(root, f'img_{index:03d}.png'), img)
    return root


TINY_CONFIG = """
default_scope = 'ebtvision'
model_kind = '{kind}'
_backbone = dict(arch=dict(depth=1, num_heads=2, embed_dims=16), img_size=16, patch_size=8)
if model_kind == 'ebt':
    model = dict(type='EBTDenoiser', backbone=dict(type='BidirectionalEBT', **_backbone),
                 thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=5.0,
                              random_step_size_scale=2.0),
                 eval_noise_levels=[0.1, 0.2])
    _paramwise = dict(custom_keys={{'thinker.alpha': dict(lr_mult=10.0, decay_mult=0.0)}})
else:
    model = dict(type='DiTDenoiser', backbone=dict(type='DiT', **_backbone),
                 eval_noise_levels=[0.1, 0.2], test_cfg=dict(num_steps=3))
    _paramwise = dict()
_pipeline = [dict(type='LoadImageFromFile'), dict(type='CenterCrop', size=16),
             dict(type='NormalizeToSymmetric'), dict(type='PackDenoiseInputs')]
train_dataloader = dict(batch_size=4, num_workers=0,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(type='ImageFolderDataset', data_root='{train_root}',
                                     pipeline=_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='ImageFolderDataset', data_root='{val_root}',
                                   test_mode=True, pipeline=_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PSNRMetric'), dict(type='SSIMMetric', window_size=7)]
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0), paramwise_cfg=_paramwise)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=3)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2, save_last=True,
                    save_best='denoise/psnr@0.1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'), resume_state=dict(type='ResumeStateHook'))
custom_hooks = [dict(type='DenoiseVisualizationHook', interval=2)]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


@pytest.fixture
def tiny_config(tmp_path):
    """Factory: ``tiny_config(kind='ebt'|'dit')`` -> path of a tiny runnable config."""

    def make(kind: str = 'ebt') -> str:
        train_root = write_image_folder(str(tmp_path / 'data' / 'train'), 8, seed=1)
        val_root = write_image_folder(str(tmp_path / 'data' / 'val'), 4, seed=2)
        path = tmp_path / f'tiny_{kind}.py'
        path.write_text(TINY_CONFIG.format(kind=kind, train_root=train_root, val_root=val_root))
        return str(path)

    return make
