from .image_preprocessor import ImageDataPreprocessor

__all__ = ['ImageDataPreprocessor']
