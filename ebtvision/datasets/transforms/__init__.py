"""Data transforms, registered in ``ebtvision.registry.TRANSFORMS``."""
from .formatting import PackDenoiseInputs
from .loading import LoadImageFromFile, read_image_file, to_float_rgb
from .processing import (CenterCrop, NormalizeToSymmetric, RandomCrop, RandomFlip, Resize,
                         imresize)

# Alias of NormalizeToSymmetric (registered under both names).
ScaleToSymmetric = NormalizeToSymmetric

__all__ = [
    'LoadImageFromFile', 'read_image_file', 'to_float_rgb', 'RandomCrop', 'CenterCrop',
    'Resize', 'RandomFlip', 'NormalizeToSymmetric', 'ScaleToSymmetric', 'PackDenoiseInputs',
    'imresize'
]
