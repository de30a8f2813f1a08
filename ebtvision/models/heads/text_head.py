"""The text head shared by every language model: token embedding, candidates, loss."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ebtvision.registry import MODELS


@MODELS.register_module()
class TextHead(nn.Module):
    """Tokens in, logits out; by default one embedding matrix serves both (tied weights).

    An EBT's candidate for the next token is a vector of logits over the vocabulary. Before
    each energy evaluation it is normalised (:meth:`normalize`, a softmax) and embedded,
    by default as ``probs @ E``, a mixture of token embeddings; the thinking step moves the
    distribution (the gradient is taken with respect to it, as in the reference
    implementation: through the softmax the steps would shrink by about 1/V), and the
    result is read as logits again. Transformer++ predicts logits as ``features @ E^T``.

    Tying is our default: a confident candidate is then embedded exactly like the token
    it names, and no V x D matrix is added (with a 50k-token vocabulary that matrix is
    larger than a small backbone). The reference implementation unties both by default
    (its ``vocab_to_embed_uses_prob_dist`` option is our tied candidate embedding); the
    ``'linear'`` choices below reproduce its defaults.

    Args:
        vocab_size: Tokens in the vocabulary (the tokenizer's ``vocab_size``).
        embed_dims: Width of the backbone.
        pad_id: Targets equal to it are ignored by the loss and the metrics.
        init_std: Std of the random initial candidate logits.
        embed_std: Std of the normal initial token embedding (the reference leaves
            PyTorch's default, 1).
        candidate_embed: ``'tied'`` (``probs @ E``) or ``'linear'``: a bias-free
            ``Linear(V, D)`` of its own on the probabilities (``candidate_proj``; the
            reference's ``vocab_to_embed``).
        output_proj: How Transformer++ features become logits: ``'tied'``
            (``features @ E^T``) or ``'linear'``, a bias-free ``Linear(D, V)`` of its own
            (``logits_proj``; the reference baseline's ``output``).
    """

    EMBED_CHOICES = ('tied', 'linear')

    def __init__(self, vocab_size: int, embed_dims: int, pad_id: int,
                 init_std: float = 1.0, candidate_embed: str = 'tied',
                 output_proj: str = 'tied', embed_std: float = 0.02) -> None:
        super().__init__()
        for name, value in (('candidate_embed', candidate_embed), ('output_proj', output_proj)):
            if value not in self.EMBED_CHOICES:
                raise ValueError(f'{name} must be one of {self.EMBED_CHOICES}, got {value!r}')
        self.vocab_size, self.pad_id, self.init_std = vocab_size, pad_id, init_std
        self.token_embed = nn.Embedding(vocab_size, embed_dims)
        nn.init.normal_(self.token_embed.weight, std=embed_std)
        # Untied projections start as the reference initialises its linear layers.
        self.candidate_proj = self.logits_proj = None
        if candidate_embed == 'linear':
            self.candidate_proj = nn.Linear(vocab_size, embed_dims, bias=False)
            nn.init.xavier_normal_(self.candidate_proj.weight)
        if output_proj == 'linear':
            self.logits_proj = nn.Linear(embed_dims, vocab_size, bias=False)
            nn.init.xavier_normal_(self.logits_proj.weight)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, D)."""
        return self.token_embed(ids)

    @staticmethod
    def normalize(logits: torch.Tensor) -> torch.Tensor:
        """Candidate logits -> the distribution the energy reads (the thinker's transform)."""
        return logits.softmax(-1)

    def embed_candidates(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, T, V) distributions -> (B, T, D): ``probs @ E``, or ``candidate_proj``."""
        if self.candidate_proj is not None:
            return self.candidate_proj(probs)
        return probs @ self.token_embed.weight

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, D) features -> (B, T, V) logits: ``features @ E^T``, or ``logits_proj``."""
        if self.logits_proj is not None:
            return self.logits_proj(features)
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
