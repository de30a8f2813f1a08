from .adaln_image_transformer import AdaLNImageTransformer
from .arch_settings import ARCH_SETTINGS, resolve_arch
from .bidirectional_ebt import BidirectionalEBT
from .dit import DiT

__all__ = ['ARCH_SETTINGS', 'resolve_arch', 'AdaLNImageTransformer', 'BidirectionalEBT', 'DiT']
