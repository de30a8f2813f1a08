from .adaln import AdaLNBlock, AdaLNFinalLayer, modulate
from .attention import SelfAttention
from .embeddings import PatchEmbed, TimestepEmbedder, sincos_2d_position_embedding

__all__ = [
    'AdaLNBlock', 'AdaLNFinalLayer', 'modulate', 'SelfAttention', 'PatchEmbed',
    'TimestepEmbedder', 'sincos_2d_position_embedding'
]
