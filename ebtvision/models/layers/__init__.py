from .adaln import AdaLNBlock, AdaLNFinalLayer
from .attention import SelfAttention
from .checkpointing import call_block
from .embeddings import PatchEmbed, TimestepEmbedder, sincos_2d_position_embedding
from .functional import gelu_tanh, layer_norm_modulate
from .fused_block import fused_adaln_block, reference_adaln_block
from .kv_cache import KVCache

__all__ = [
    'AdaLNBlock', 'AdaLNFinalLayer', 'SelfAttention', 'PatchEmbed',
    'TimestepEmbedder', 'sincos_2d_position_embedding', 'gelu_tanh', 'layer_norm_modulate',
    'fused_adaln_block', 'reference_adaln_block', 'KVCache', 'call_block'
]
