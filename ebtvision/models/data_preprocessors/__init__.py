from .image_preprocessor import ImageDataPreprocessor
from .video_preprocessor import VideoDataPreprocessor

__all__ = ['ImageDataPreprocessor', 'VideoDataPreprocessor']
