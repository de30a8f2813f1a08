"""Transformer++ language model: the same causal trunk and text head, one pass per token."""
from typing import Dict, List, Optional

import torch

from ebtvision.registry import MODELS
from ebtvision.structures import TextDataSample
from ..layers.kv_cache import KVCache
from .language_model import LanguageModel, TextPrediction


@MODELS.register_module()
class TransformerPPLanguageModel(LanguageModel):
    """Llama-style decoder predicting next-token logits through the text head (the tied
    embedding, or its own ``output_proj='linear'``)."""

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List[TextDataSample]] = None) -> Dict[str, torch.Tensor]:
        ids, targets = inputs[:, :-1], inputs[:, 1:]
        mask = self.loss_mask(targets, data_samples)
        logits = self.predict_logits(ids).logits
        with torch.no_grad():
            correct = (self.head.decode(logits) == targets) & mask
            accuracy = correct.sum() / mask.sum().clamp(min=1)
        return dict(loss=self.head.loss(logits, targets, mask), accuracy=accuracy)

    def predict_logits(self, ids: torch.Tensor, data_samples=None, seed_offset: int = 0,
                       cache: Optional[KVCache] = None, **kwargs) -> TextPrediction:
        """One forward pass; thinking options do not apply.

        With a ``cache`` (generation) only the tokens of ``ids`` after the cached ones are
        read, and the logits (B, 1, V) of the next token are returned.
        """
        if cache is None:
            features = self.backbone(self.head.embed_tokens(ids))
            return TextPrediction(self.head.logits_from_features(features))
        features = self.backbone.extend(self.head.embed_tokens(ids[:, cache.length:]), cache)
        return TextPrediction(self.head.logits_from_features(features[:, -1:]))
