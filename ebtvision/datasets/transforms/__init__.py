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
from .video import (VIDEO_META_KEYS, LoadVideoClip, PackVideoInputs, VideoCenterCrop,  # noqa: E402
                    VideoRandomCrop, VideoResize, resize_frames)

__all__ += [
    'LoadVideoClip', 'VideoResize', 'VideoCenterCrop', 'VideoRandomCrop', 'PackVideoInputs',
    'VIDEO_META_KEYS', 'resize_frames'
]
from .formatting import PackClassifyInputs  # noqa: E402

__all__ += ['PackClassifyInputs']
from .text import PackTextInputs  # noqa: E402

__all__ += ['PackTextInputs']
