"""The text head shared by every language model: token embedding, candidates, loss."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ebtvision.registry import MODELS


@MODELS.register_module()
class TextHead(nn.Module):
    """Tokens in, logits out, with one embedding matrix for both (tied weights).

    An EBT's candidate for the next token is a vector of logits over the vocabulary. Before
    each energy evaluation it is normalised (:meth:`normalize`, a softmax) and read as
    ``probs @ E``, a mixture of token embeddings; the thinking step moves the distribution
    (the gradient is taken with respect to it, as in the reference implementation: through
    the softmax the steps would shrink by about 1/V), and the result is read as logits
    again. Transformer++ predicts logits as ``features @ E^T``.

    Args:
        vocab_size: Tokens in the vocabulary (the tokenizer's ``vocab_size``).
        embed_dims: Width of the backbone.
        pad_id: Targets equal to it are ignored by the loss and the metrics.
        init_std: Std of the random initial candidate logits.
    """

    def __init__(self, vocab_size: int, embed_dims: int, pad_id: int,
                 init_std: float = 1.0) -> None:
        super().__init__()
        self.vocab_size, self.pad_id, self.init_std = vocab_size, pad_id, init_std
        self.token_embed = nn.Embedding(vocab_size, embed_dims)
        nn.init.normal_(self.token_embed.weight, std=0.02)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, D)."""
        return self.token_embed(ids)

    @staticmethod
    def normalize(logits: torch.Tensor) -> torch.Tensor:
        """Candidate logits -> the distribution the energy reads (the thinker's transform)."""
        return logits.softmax(-1)

    def embed_candidates(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, T, V) distributions -> (B, T, D) expected embeddings, ``probs @ E``."""
        return probs @ self.token_embed.weight

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, D) features -> (B, T, V) logits through the tied embedding."""
        return features @ self.token_embed.weight.t()

    def init_candidates(self, batch: int, length: int, device=None,
                        generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Random initial logits (B, T, V)."""
        noise = torch.randn(batch, length, self.vocab_size, generator=generator)
        return (noise * self.init_std).to(device)

    def target_mask(self, targets: torch.Tensor) -> torch.Tensor:
        return targets != self.pad_id

    def loss(self, logits: torch.Tensor, targets: torch.Tensor,
             mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Mean cross-entropy over the targets that count (not padding, inside ``mask``)."""
        keep = self.target_mask(targets) if mask is None else mask & self.target_mask(targets)
        losses = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                                 reduction='none').view_as(targets)
        return (losses * keep).sum() / keep.sum().clamp(min=1)

    @staticmethod
    def decode(logits: torch.Tensor) -> torch.Tensor:
        """Greedy tokens (B, T) of (B, T, V) logits."""
        return logits.argmax(-1)
