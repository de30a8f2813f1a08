"""Shared fixtures and helpers of the tests: tiny generated images, videos and configs,
the data-warning capture, and the tiny models that several test files build.

Test files import the helpers with ``from conftest import ...``; no test file imports
another one.
"""
import contextlib
import itertools
import logging
import os
import os.path as osp
import re
import sys
from typing import Iterator, List, Optional

import cv2
import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope='session', autouse=True)
def _safe_checkpoint_io():
    # What the tools and ebtvision.apis.init_model install first: tests that build a
    # Runner (or call MMEngine's checkpoint functions) directly get the same loaders and
    # atomic writes. Importing ebtvision alone installs nothing (tests/test_fileio.py
    # checks that in a fresh process).
    from ebtvision.fileio import install_safe_checkpoint_io
    install_safe_checkpoint_io()


@pytest.fixture(scope='module')
def single_thread():
    """Tiny tensors gain nothing from intra-op threads, which thrash on a busy 2-core box."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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

# The runtime part of the tiny training configs: 4 iterations, validation and a
# checkpoint every 2, the best one by the metric `best` (rule `rule`).
TINY_RUNTIME = """
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0), paramwise_cfg=_paramwise)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2, save_last=True,
                    save_best='{best}', rule='{rule}'),
    sampler_seed=dict(type='DistSamplerSeedHook'), resume_state=dict(type='ResumeStateHook'))
custom_hooks = [{vis_hook}]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


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
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=3)]
""" + TINY_RUNTIME.format(best='denoise/psnr@0.1', rule='greater',
                           vis_hook="dict(type='DenoiseVisualizationHook', interval=2)")


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


# ----------------------------------------------------------------------------------
# Data warnings: what the data loaders log through MMEngine's logger
# ----------------------------------------------------------------------------------
_data_log_names = itertools.count()


class _ListHandler(logging.Handler):

    def __init__(self, records: List[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@contextlib.contextmanager
def data_warnings(match: Optional[str] = None) -> Iterator[List[str]]:
    """Collect the WARNING records logged with ``logger='current'`` inside the block.

    A fresh MMLogger becomes the current instance, so ``print_log(logger='current')``
    reaches it. Its handler keeps every record (MMLogger's own handlers drop repeated
    warnings), so tests can count them.

    Args:
        match: If given, like ``pytest.warns(match=...)``: one message must match
            this regular expression.

    Yields:
        The messages, appended as they are logged.
    """
    from mmengine.logging import MMLogger

    logger = MMLogger.get_instance(f'data_log_{next(_data_log_names)}', log_level='INFO')
    records: List[str] = []
    handler = _ListHandler(records)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
    if match is not None:
        assert any(re.search(match, r) for r in records), \
            f'no data warning matches {match!r}; logged: {records}'


# ----------------------------------------------------------------------------------
# Latent cache (tests/test_datasets/test_latent_cache_*.py)
# ----------------------------------------------------------------------------------
LATENT_TBF = 0.1
LATENT_ENCODER_CFG = dict(type='PixelPatchEncoder', patch_size=4)


def build_latent_encoder():
    """The frozen encoder of the latent cache tests, in eval mode."""
    from ebtvision.registry import MODELS
    return MODELS.build(dict(LATENT_ENCODER_CFG)).eval()


def latent_pipeline():
    """The deterministic frame pipeline of the latent cache tests (16 px frames)."""
    from ebtvision.datasets.transforms import (LoadVideoClip, PackVideoInputs,
                                               VideoCenterCrop, VideoResize)
    return [LoadVideoClip(), VideoResize(short_side=16), VideoCenterCrop(size=16),
            PackVideoInputs()]


@pytest.fixture(scope='session')
def latent_videos(tmp_path_factory):
    """A folder of three short videos and one corrupt file, for the latent cache."""
    root = tmp_path_factory.mktemp('cache_videos')
    write_video(str(root / 'a.avi'), 30, fps=30.0, size=(24, 32), seed=1)  # 10 positions
    write_video(str(root / 'b.mp4'), 24, fps=20.0, size=(32, 24), seed=2)  # 12 positions
    write_video(str(root / 'c.avi'), 6, fps=20.0, size=(24, 32), seed=3)  # 3 positions
    (root / 'd_corrupt.mp4').write_bytes(b'\x00\x01' * 500)
    return str(root)


def list_latent_videos(root):
    """``list_videos()`` of a ``VideoFolderDataset`` on ``root``."""
    from ebtvision.datasets import VideoFolderDataset
    return VideoFolderDataset(root, lazy_init=True).list_videos()


def extract_latents(root, cache_dir, dtype='float32', pipe=None, **kwargs):
    """``extract_latent_cache`` of ``root``'s videos (split ``train``) into ``cache_dir``.

    Unless ``warns=False``, a data warning about ``d_corrupt`` must be logged.
    """
    from ebtvision.datasets import extract_latent_cache
    settings = dict(encoder=LATENT_ENCODER_CFG, time_between_frames=LATENT_TBF, dtype=dtype,
                    pipeline=[repr(t) for t in (pipe or latent_pipeline())])
    kwargs.setdefault('shard_size', 2)
    with data_warnings(match='d_corrupt') if kwargs.pop('warns', True) else \
            contextlib.nullcontext():
        return extract_latent_cache(str(cache_dir), dict(train=list_latent_videos(root)),
                                    pipe or latent_pipeline(), build_latent_encoder(), settings,
                                    batch_size=5, progress=False, log=lambda msg: None,
                                    **kwargs)


@pytest.fixture(scope='session')
def latent_cache(latent_videos, tmp_path_factory):
    """``(cache_dir, summary)`` of the cache extracted from ``latent_videos``."""
    cache_dir = tmp_path_factory.mktemp('cache') / 'latents'
    summary = extract_latents(latent_videos, cache_dir)
    return str(cache_dir), summary


def latent_shard_contents(cache_dir):
    """``{file name: shard dict}`` of every shard in ``cache_dir``."""
    out = {}
    for name in sorted(os.listdir(cache_dir)):
        if name.endswith('.pt'):
            out[name] = torch.load(osp.join(cache_dir, name), weights_only=True)
    return out


def assert_same_shards(a, b):
    """Two ``latent_shard_contents`` hold equal shards."""
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            if torch.is_tensor(a[name][key]):
                assert torch.equal(a[name][key], b[name][key]), (name, key)
            else:
                assert a[name][key] == b[name][key], (name, key)


# ----------------------------------------------------------------------------------
# Tiny models of tests/test_models, shared by several test files there
# ----------------------------------------------------------------------------------
# Denoisers and linear probe (test_algorithms/): 1 block, 2x2 patches of 8 px.
TINY_IMAGE_BACKBONE = dict(arch=dict(depth=1, num_heads=2, embed_dims=16), img_size=16,
                           patch_size=8)


def denoise_samples(n):
    """``n`` denoising data samples numbered by ``sample_idx``."""
    from ebtvision.structures import DenoiseDataSample
    return [DenoiseDataSample(metainfo=dict(sample_idx=i)) for i in range(n)]


# Image backbones (test_backbones/test_bidirectional_ebt.py, test_dit.py): 2 blocks, 4 px patches.
TINY_PATCH4_BACKBONE = dict(arch=dict(depth=2, num_heads=2, embed_dims=16), img_size=16,
                            patch_size=4)


def perturbed(model):
    """``model`` with seeded noise added to every weight (adaLN-Zero starts flat)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


# Causal backbones: 2 blocks (test_backbones/test_causal_*.py); 1 block for the language
# and next-frame models (test_algorithms/, test_heads/).
TWO_BLOCK_CAUSAL_ARCH = dict(depth=2, num_heads=2, embed_dims=16)
TINY_CAUSAL_ARCH = dict(depth=1, num_heads=2, embed_dims=16)


def text_ebt(**kwargs):
    """A tiny EBT language model (seeded)."""
    from ebtvision.models import EBTLanguageModel
    torch.manual_seed(0)
    return EBTLanguageModel(backbone=dict(type='CausalEBT', arch=TINY_CAUSAL_ARCH, max_steps=2),
                            thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=50.0),
                            **kwargs)


def text_transformer_pp(**kwargs):
    """A tiny Transformer++ language model (seeded)."""
    from ebtvision.models import TransformerPPLanguageModel
    torch.manual_seed(0)
    return TransformerPPLanguageModel(backbone=dict(type='CausalTransformer',
                                                    arch=TINY_CAUSAL_ARCH),
                                      **kwargs)


def dyck_batch(model, count=4, seq_len=24):
    """``count`` Dyck samples through ``model``'s data preprocessor."""
    from mmengine.dataset import pseudo_collate

    from ebtvision.datasets.text import DyckDataset
    dataset = DyckDataset(num_samples=count, length=(3, 8), seq_len=seq_len, seed=3)
    return model.data_preprocessor(pseudo_collate([dataset[i] for i in range(count)]))


# Next-frame models: frame latents of shape (3, 2, 2).
NEXT_FRAME_LATENT = (3, 2, 2)


def video_ebt(**kwargs):
    """A tiny next-frame EBT on ``NEXT_FRAME_LATENT`` latents (seeded)."""
    from ebtvision.models import EBTNextFrame
    torch.manual_seed(0)
    options = dict(
        backbone=dict(type='CausalEBT', arch=TINY_CAUSAL_ARCH, max_steps=2),
        head=dict(type='NextFrameHead'),
        latent_shape=NEXT_FRAME_LATENT, thinker=dict(type='EnergyMinimizer', num_steps=2,
                                                     alpha=0.5, random_step_size_scale=2.0,
                                                     random_step_size_dims=2))
    options.update(kwargs)
    return EBTNextFrame(**options)


def video_transformer_pp():
    """A tiny next-frame Transformer++ on ``NEXT_FRAME_LATENT`` latents (seeded)."""
    from ebtvision.models import TransformerPPNextFrame
    torch.manual_seed(0)
    return TransformerPPNextFrame(backbone=dict(type='CausalTransformer', arch=TINY_CAUSAL_ARCH),
                                  head=dict(type='NextFrameHead'),
                                  latent_shape=NEXT_FRAME_LATENT)


def video_samples(count, padded=()):
    """``count`` latent video data samples; ``padded[i]`` padded frames at the end of clip i."""
    from ebtvision.structures import VideoDataSample
    padded = list(padded) + [0] * (count - len(padded))
    return [VideoDataSample(metainfo=dict(input_kind='latents', sample_idx=i, num_padded=p))
            for i, p in enumerate(padded)]


def latent_clips(batch=2, length=5, seed=1):
    """Seeded random latent clips, (batch, length, *NEXT_FRAME_LATENT)."""
    return torch.randn(batch, length, *NEXT_FRAME_LATENT,
                       generator=torch.Generator().manual_seed(seed))


# Layers (test_layers/): batch, tokens, dims, heads and MLP hidden dims of the float64 checks.
LAYER_SIZES = (2, 3, 8, 2, 12)


def f64(*shape, scale=0.5, seed=None):
    """A random float64 tensor that requires grad (optionally seeding first)."""
    if seed is not None:
        torch.manual_seed(seed)
    return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_()


# ----------------------------------------------------------------------------------
# Command-line tools (tests/test_tools)
# ----------------------------------------------------------------------------------
def run_tool(*args, check=True):
    """Run ``python ARGS`` in the repository root; with ``check`` a failure shows its output."""
    import subprocess
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env={**os.environ, 'PYTHONPATH': ROOT})
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result


def weights(path):
    """The state dict of a checkpoint, loaded weights-only."""
    from ebtvision.fileio import load_checkpoint_weights_only
    return load_checkpoint_weights_only(path, map_location='cpu')['state_dict']


# A tiny next-frame model over 16 px frames (kind 'ebt', 'tpp', or 'latents': no encoder,
# nothing to decode) and its clip pipeline; format with kind=...
TINY_VIDEO_MODEL = """
default_scope = 'ebtvision'
kind = '{kind}'
_arch = dict(depth=1, num_heads=2, embed_dims=16)
_encoder = dict(type='PixelPatchEncoder', patch_size=4)
if kind == 'ebt':
    model = dict(type='EBTNextFrame', encoder=_encoder, frame_size=16,
                 backbone=dict(type='CausalEBT', arch=_arch, max_steps=2),
                 head=dict(type='NextFrameHead'),
                 thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=1.0,
                              random_step_size_scale=2.0, random_step_size_dims=2),
                 test_cfg=dict(decode=True))
elif kind == 'tpp':
    model = dict(type='TransformerPPNextFrame', encoder=_encoder, frame_size=16,
                 backbone=dict(type='CausalTransformer', arch=_arch),
                 head=dict(type='NextFrameHead'), test_cfg=dict(decode=True))
else:
    model = dict(type='TransformerPPNextFrame', latent_shape=(48, 4, 4),
                 backbone=dict(type='CausalTransformer', arch=_arch),
                 head=dict(type='NextFrameHead'))
_pipeline = [dict(type='LoadVideoClip'), dict(type='VideoResize', short_side=16),
             dict(type='VideoCenterCrop', size=16), dict(type='PackVideoInputs')]
"""
VIDEO_CONFIG = TINY_VIDEO_MODEL + """
_paramwise = (dict(custom_keys={{'thinker.alpha': dict(lr_mult=3.0, decay_mult=0.0)}})
              if kind == 'ebt' else dict())
_clip = dict(data_root='{root}', clip_len=5, time_between_frames=0.2, pipeline=_pipeline)
train_dataloader = dict(batch_size=2, num_workers=0,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(type='VideoFolderDataset', time_range=(0, 0.7),
                                     clip_stride=1, **_clip))
val_dataloader = dict(batch_size=2, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='VideoFolderDataset', time_range=(0.7, 1),
                                   clip_stride=2, test_mode=True, **_clip))
test_dataloader = val_dataloader
val_evaluator = dict(type='NextFrameMetric')
test_evaluator = dict(type='NextFrameMetric', per_frame=True)
""" + TINY_RUNTIME.format(best='nextframe/smooth_l1', rule='less',
                           vis_hook="dict(type='NextFrameVisualizationHook')")


@pytest.fixture
def video_config(tmp_path):
    """Factory: ``video_config(kind='ebt'|'tpp')`` -> a tiny next-frame config on 2 videos."""
    root = tmp_path / 'videos'
    root.mkdir()
    write_video(str(root / 'a.mp4'), 40, fps=10, size=24, seed=1)
    write_video(str(root / 'b.avi'), 30, fps=10, size=24, seed=2)

    def make(kind: str = 'ebt') -> str:
        path = tmp_path / f'video_{kind}.py'
        path.write_text(VIDEO_CONFIG.format(kind=kind, root=str(root)))
        return str(path)

    return make


# ----------------------------------------------------------------------------------
# Tiny language models (tests/test_apis, tests/test_demo, tests/test_tools)
# ----------------------------------------------------------------------------------
TINY_TEXT_MODEL = """
default_scope = 'ebtvision'
_arch = dict(depth=1, num_heads=2, embed_dims=16)
if '{kind}' == 'ebt':
    model = dict(type='EBTLanguageModel', backbone=dict(type='CausalEBT', arch=_arch, max_steps=2),
                 thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=50.0))
else:
    model = dict(type='TransformerPPLanguageModel',
                 backbone=dict(type='CausalTransformer', arch=_arch))
"""


def write_text_model(folder, kind: str):
    """A tiny language model config (``'ebt'`` or ``'tpp'``, trained length 16 on pydoc
    text) and a checkpoint of its seeded random weights: ``(config, checkpoint, model)``."""
    from mmengine.config import Config

    from ebtvision.registry import MODELS
    from ebtvision.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    config = osp.join(str(folder), f'{kind}_text.py')
    with open(config, 'w') as file:
        file.write(TINY_TEXT_MODEL.format(kind=kind) + "train_dataloader = dict(dataset=dict("
                   "type='PackedTextDataset', data_root='pydoc://', seq_len=16))\n")
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    checkpoint = osp.join(str(folder), f'{kind}_text.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    return config, checkpoint, model
