"""Key/value cache of a causal transformer's real tokens, for generation and rollout."""
from typing import List, Optional, Tuple

import torch

KeysValues = Tuple[torch.Tensor, torch.Tensor]


class KVCache:
    """The rotated keys and values (B, H, L, dh) of every block for the L tokens read so far.

    Real tokens attend only to earlier real tokens, so their keys and values never change
    once computed. Autoregressive generation (text) and rollout (video) keep them here and
    read one new token per step instead of re-reading the whole sequence; an EBT scores its
    next-token candidate against them. Caches hold no autograd graph (inference only).
    """

    def __init__(self, layers: Optional[List[KeysValues]] = None, length: int = 0) -> None:
        self.layers: List[KeysValues] = layers or []
        self.length = length

    @property
    def batch(self) -> Optional[int]:
        """Batch size of the cached tokens (None while empty)."""
        return self.layers[0][0].shape[0] if self.layers else None

    def past(self, block: int) -> Optional[KeysValues]:
        """Keys and values of ``block`` (None while empty)."""
        return self.layers[block] if self.layers else None

    def append(self, new: List[KeysValues]) -> None:
        """Add the keys and values of n more tokens, one (keys, values) pair per block."""
        if self.layers and len(new) != len(self.layers):
            raise ValueError(f'{len(new)} blocks of keys/values for a cache of '
                             f'{len(self.layers)}')
        added = new[0][0].shape[2]
        if self.layers:
            new = [(torch.cat([k0, k1], dim=2), torch.cat([v0, v1], dim=2))
                   for (k0, v0), (k1, v1) in zip(self.layers, new)]
        self.layers = [(k.detach(), v.detach()) for k, v in new]
        self.length += added

    def repeat(self, count: int) -> 'KVCache':
        """The cache for ``count`` copies of the batch folded as (count * B) (candidates)."""
        if count == 1:  # nothing to copy; callers only read it
            return self
        return KVCache([(k.repeat(count, 1, 1, 1), v.repeat(count, 1, 1, 1))
                        for k, v in self.layers], self.length)

    def select(self, index: torch.Tensor) -> 'KVCache':
        """The cache of the samples ``index`` of the batch."""
        return KVCache([(k[index], v[index]) for k, v in self.layers], self.length)
