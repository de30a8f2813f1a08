"""ebtvision: Energy-Based Transformers for vision and video."""
from .version import __version__
from .utils import register_all_modules

__all__ = ['__version__', 'register_all_modules']
