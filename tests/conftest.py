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



# Video codecs OpenCV's FFmpeg backend can write here, by file extension.
_VIDEO_FOURCC = {'.mp4': 'mp4v', '.avi': 'MJPG', '.webm': 'VP80', '.mkv': 'MJPG', '.mov': 'mp4v'}


def write_video(path: str, frames_or_count=12, fps: float = 30.0, size=(32, 48),
                seed: int = 0) -> np.ndarray:
    """Write a small video with ``cv2.VideoWriter`` and return its frames (RGB uint8).

    Args:
        path: Output file; the extension picks the codec (.mp4/.mov: mp4v, .avi/.mkv:
            MJPG, .webm: VP80).
        frames_or_count: RGB uint8 frames (N, H, W, 3) to write, or a frame count: then
            each frame is a smooth seeded background whose brightness changes with the
            frame index plus a white square moving along a raster path, so that every
            frame is visibly different and a decoded frame can be matched to its index.
        fps: Frame rate stored in the container.
        size: Size of generated frames: an int (square) or (height, width).
        seed: Seed of the background.

    Returns:
        The frames written, (N, H, W, 3) RGB uint8.
    """
    if isinstance(frames_or_count, (int, np.integer)):
        h, w = (size, size) if isinstance(size, (int, np.integer)) else size
        rng = np.random.default_rng(seed)
        small = rng.integers(40, 180, (3, 3, 3), dtype=np.uint8)
        background = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.int16)
        side = max(4, min(h, w) // 4)
        cols = max(1, (w - side) // 2 + 1)
        frames = []
        for index in range(int(frames_or_count)):
            frame = np.clip(background + (index * 9) % 60 - 30, 0, 255).astype(np.uint8)
            y = (2 * (index // cols)) % max(1, h - side + 1)
            x = 2 * (index % cols)
            frame[y:y + side, x:x + side] = 255
            frames.append(frame)
        frames = np.stack(frames)
    else:
        frames = np.asarray(frames_or_count, dtype=np.uint8)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*_VIDEO_FOURCC[osp.splitext(path)[1].lower()])
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, fourcc, float(fps), (width, height))
    assert writer.isOpened(), f'OpenCV cannot write {path}'
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))  # RGB -> BGR
    writer.release()
    return frames

TINY_CONFIG = """
default_scope = 'ebtvision'
model_kind = '{kind}'
_backbone = dict(arch=dict(depth=1, num_heads=2, embed_dims=16), img_size=16, patch_size=8)
if model_kind in ('ebt', 'ebt_replay'):
    model = dict(type='EBTDenoiser', backbone=dict(type='BidirectionalEBT', **_backbone),
                 thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=5.0,
                              random_step_size_scale=2.0),
                 eval_noise_levels=[0.1, 0.2])
    if model_kind == 'ebt_replay':
        model['replay_buffer'] = dict(type='ReplayBuffer', capacity=6, replay_fraction=0.5)
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
val_evaluator = [dict(type='PSNRMetric'), dict(type='SSIMMetric', window_size=7),
                 dict(type='ThinkingMetric')]
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


TINY_DENOISER_SIZE = 16
TINY_DENOISER = """
_backbone = dict(arch=dict(depth=1, num_heads=2, embed_dims=16), img_size={size}, patch_size=8)
if '{kind}' == 'ebt':
    model = dict(type='EBTDenoiser', backbone=dict(type='BidirectionalEBT', **_backbone),
                 thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=5.0))
else:
    model = dict(type='DiTDenoiser', backbone=dict(type='DiT', **_backbone),
                 test_cfg=dict(num_steps=3))
"""


def write_denoiser(folder, kind: str):
    """A tiny 16 px denoiser config (``'ebt'`` or ``'dit'``) and a checkpoint of it."""
    from mmengine.config import Config

    from ebtvision.registry import MODELS
    from ebtvision.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    config = osp.join(str(folder), f'tiny_{kind}.py')
    with open(config, 'w') as file:
        file.write(TINY_DENOISER.format(kind=kind, size=TINY_DENOISER_SIZE))
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    with torch.no_grad():  # adaLN-Zero starts with a flat energy: give it some slope
        for param in model.parameters():
            param.add_(0.2 * torch.randn_like(param))
    checkpoint = osp.join(str(folder), f'tiny_{kind}.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 1}}, checkpoint)
    return config, checkpoint


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth uint8 RGB image (a 3x3 grid of random colours, bilinearly enlarged)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(30, 220, (3, 3, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR) + 0.5,
                   0, 255).astype(np.uint8)


@pytest.fixture
def tiny_config(tmp_path):
    """Factory: ``tiny_config(kind='ebt'|'ebt_replay'|'dit')`` -> path of a tiny runnable config."""

    def make(kind: str = 'ebt') -> str:
        train_root = write_image_folder(str(tmp_path / 'data' / 'train'), 8, seed=1)
        val_root = write_image_folder(str(tmp_path / 'data' / 'val'), 4, seed=2)
        path = tmp_path / f'tiny_{kind}.py'
        path.write_text(TINY_CONFIG.format(kind=kind, train_root=train_root, val_root=val_root))
        return str(path)

    return make


def write_idx(path: str, array: np.ndarray) -> str:
    """Write a uint8 array in the idx format (MNIST's), gzip-compressed if ``path`` ends .gz."""
    import gzip
    import struct
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = (struct.pack('>BBBB', 0, 0, 0x08, array.ndim) +
            struct.pack(f'>{array.ndim}I', *array.shape) + array.tobytes())
    with open(path, 'wb') as f:
        f.write(gzip.compress(data) if path.endswith('.gz') else data)
    return path
