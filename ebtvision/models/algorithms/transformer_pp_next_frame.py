"""Transformer++ baseline: the causal transformer regressing the next latent directly."""
from typing import Dict, List, Optional

import torch

from ebtvision.registry import MODELS
from ebtvision.structures import VideoDataSample
from ..backbones import CausalEBT
from ..heads import masked_frame_loss
from ..layers.kv_cache import KVCache
from .next_frame_predictor import NextFramePredictor, Prediction


@MODELS.register_module()
class TransformerPPNextFrame(NextFramePredictor):
    """Feed-forward next-frame prediction: embed, causal transformer, project back.

    Same encoder, head embedding, blocks and loss as :class:`EBTNextFrame`; the head
    needs ``predict_latents=True`` (set here when absent).
    """

    def __init__(self, head: dict, **kwargs) -> None:
        head = dict(head)
        head.setdefault('predict_latents', True)
        super().__init__(head=head, **kwargs)
        if isinstance(self.backbone, CausalEBT):
            raise TypeError('Transformer++ regresses frames: use a CausalTransformer backbone, '
                            'not a CausalEBT')

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List[VideoDataSample]] = None) -> Dict[str, torch.Tensor]:
        latents = self.encode_inputs(inputs, data_samples)
        real, target = latents[:, :-1], latents[:, 1:]
        mask = self.target_mask(data_samples, *real.shape[:2], real.device)
        pred = self.predict_next_latents(real)[0]
        loss = self.head.loss(pred, target, mask)
        with torch.no_grad():
            copy_last = masked_frame_loss(real, target, mask)
        return dict(loss=loss, copy_last_smooth_l1=copy_last)

    def predict_next_latents(self, real: torch.Tensor,
                             data_samples: Optional[List[VideoDataSample]] = None,
                             cache: Optional[KVCache] = None, **kwargs) -> Prediction:
        """One forward pass; thinking options (steps, candidates) do not apply.

        With a ``cache`` (rollout) only the frames after the cached ones are read and the
        frame after the last is predicted, (B, 1, C, h, w).
        """
        if cache is None:
            return Prediction(self.head.predict(self.backbone(self.head.embed_latents(real))))
        features = self.backbone.extend(self.head.embed_latents(real[:, cache.length:]), cache)
        return Prediction(self.head.predict(features[:, -1:]))
