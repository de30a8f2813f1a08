"""Inference APIs used by the demos, the tools and users' own scripts."""
from .denoise_inferencer import DenoiseInferencer, DenoiseResult, image_quality
from .image_io import ImageInputError, LoadedImage, load_image
from .model_loading import ModelLoadError, init_model, load_config

__all__ = [
    'DenoiseInferencer', 'DenoiseResult', 'image_quality', 'ImageInputError', 'LoadedImage',
    'load_image', 'ModelLoadError', 'init_model', 'load_config'
]
