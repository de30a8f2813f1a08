from .image_preprocessor import ImageDataPreprocessor
from .text_preprocessor import TextDataPreprocessor
from .video_preprocessor import VideoDataPreprocessor

__all__ = ['ImageDataPreprocessor', 'VideoDataPreprocessor', 'TextDataPreprocessor']
