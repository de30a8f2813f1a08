from .adaln_image_transformer import AdaLNImageTransformer
from .arch_settings import ARCH_SETTINGS, resolve_arch
from .bidirectional_ebt import BidirectionalEBT
from .causal_ebt import CausalEBT, candidate_attention_mask
from .causal_transformer import CausalTransformer
from .dit import DiT
from .timm_backbone import TimmBackbone

__all__ = [
    'ARCH_SETTINGS', 'resolve_arch', 'AdaLNImageTransformer', 'BidirectionalEBT', 'CausalEBT',
    'CausalTransformer', 'candidate_attention_mask', 'DiT',
    'TimmBackbone'
]
