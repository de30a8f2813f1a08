"""Datasets and data transforms of ebtvision."""
from . import transforms
from .image_folder import (IMG_EXTENSIONS, SKIMAGE_PREFIX, ImageFolderDataset,
                           resolve_data_root, skimage_data_dir)
from .transforms import (CenterCrop, LoadImageFromFile, NormalizeToSymmetric,
                         PackDenoiseInputs, RandomCrop, RandomFlip, Resize, ScaleToSymmetric)

__all__ = [
    'transforms', 'ImageFolderDataset', 'IMG_EXTENSIONS', 'SKIMAGE_PREFIX', 'skimage_data_dir',
    'resolve_data_root', 'LoadImageFromFile', 'RandomCrop', 'CenterCrop', 'Resize',
    'RandomFlip', 'NormalizeToSymmetric', 'ScaleToSymmetric', 'PackDenoiseInputs'
]
