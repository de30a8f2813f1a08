"""Text data of the language branch: tokenizers, Dyck languages, packed plain text."""
from .dyck import BRACKETS, SEPARATOR, DyckDataset, dyck_prefix, is_balanced, max_depth_of
from .packed_text import PYDOC_PREFIX, PackedTextDataset, pydoc_text
from .tokenizers import ByteTokenizer, FileTokenizer, build_tokenizer

__all__ = [
    'BRACKETS', 'SEPARATOR', 'DyckDataset', 'dyck_prefix', 'is_balanced', 'max_depth_of',
    'PYDOC_PREFIX', 'PackedTextDataset', 'pydoc_text', 'ByteTokenizer', 'FileTokenizer',
    'build_tokenizer'
]
