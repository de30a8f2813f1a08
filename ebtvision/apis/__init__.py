"""Inference APIs used by the demos, the tools and users' own scripts.

One inferencer per task, on one base (config + weights-only checkpoint, device, thinking
options): :class:`DenoiseInferencer` (images), :class:`NextFrameInferencer` (video
rollouts), :class:`TextGenerator` (text). The demos import only this package (and the
registry setup of :mod:`ebtvision.utils`), so the helpers they write results with are
re-exported here too.
"""
from ebtvision.datasets.file_listing import skimage_data_dir
from ebtvision.fileio import atomic_write
from ebtvision.models.thinking import EnergyBasedModel
from ebtvision.visualization import (check_video_writer, overlay_heatmap, plot_rollout_curves,
                                     save_video, side_by_side_frames)
from .base_inferencer import BaseInferencer
from .denoise_inferencer import DenoiseInferencer, DenoiseResult, image_quality
from .image_io import ImageInputError, LoadedImage, load_image
from .model_loading import ModelLoadError, init_model, load_config
from .next_frame_inferencer import NextFrameInferencer, NextFrameResult, rollout_clip
from .text_generator import TextGeneration, TextGenerator
from .video_clip import (DEFAULT_FRAMES, VideoClip, VideoClipError, clip_dataset_cfg,
                         read_video_clip)

__all__ = [
    'BaseInferencer', 'EnergyBasedModel', 'DenoiseInferencer', 'DenoiseResult',
    'image_quality', 'NextFrameInferencer', 'NextFrameResult', 'rollout_clip',
    'TextGenerator', 'TextGeneration', 'VideoClip', 'VideoClipError', 'DEFAULT_FRAMES',
    'clip_dataset_cfg', 'read_video_clip', 'ImageInputError', 'LoadedImage', 'load_image',
    'ModelLoadError', 'init_model', 'load_config', 'atomic_write', 'overlay_heatmap',
    'check_video_writer', 'plot_rollout_curves', 'save_video', 'side_by_side_frames',
    'skimage_data_dir'
]
