"""Next-frame head: what a candidate frame is, how it starts, is embedded and scored."""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from ebtvision.registry import MODELS

FRAME_LOSSES = ('smooth_l1', 'mse')


def frame_errors(pred: torch.Tensor, target: torch.Tensor, loss_type: str) -> torch.Tensor:
    """Per-frame error (B, T) of (B, T, ...) latents, averaged over each frame's entries."""
    if loss_type == 'smooth_l1':
        errors = F.smooth_l1_loss(pred, target, beta=1.0, reduction='none')
    elif loss_type == 'mse':
        errors = F.mse_loss(pred, target, reduction='none')
    else:
        raise ValueError(f'loss_type must be one of {FRAME_LOSSES}, got {loss_type!r}')
    return errors.flatten(2).mean(-1)


def masked_frame_loss(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor],
                      loss_type: str = 'smooth_l1') -> torch.Tensor:
    """Mean per-frame error over the frames where ``mask`` (B, T) is True."""
    errors = frame_errors(pred, target, loss_type)
    if mask is None:
        return errors.mean()
    return (errors * mask).sum() / mask.sum().clamp(min=1)


@MODELS.register_module()
class NextFrameHead(BaseModule):
    """Maps frame latents to the transformer width and back.

    Candidates are latents of the next frame, initialised as N(0, I) (``init_std``
    scales it); one learned linear layer embeds real frames and candidates alike
    (4x28x28 = 3136 -> width for the SD VAE at 224 px). ``predict_latents=True`` adds
    the output projection that the Transformer++ baseline regresses with.

    Args:
        latent_shape: (C, h, w) of one frame's latent.
        embed_dims: Transformer width.
        predict_latents: Add the width -> latent projection (Transformer++).
        loss_type: ``'smooth_l1'`` (the paper's video loss and metric, beta 1) or ``'mse'``.
        init_std: Std of the initial candidates.
        init_cfg: MMEngine init config.
    """

    def __init__(self, latent_shape: Sequence[int], embed_dims: int,
                 predict_latents: bool = False, loss_type: str = 'smooth_l1',
                 init_std: float = 1.0, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss_type not in FRAME_LOSSES:
            raise ValueError(f'loss_type must be one of {FRAME_LOSSES}, got {loss_type!r}')
        self.latent_shape = tuple(int(d) for d in latent_shape)
        self.latent_dims = math.prod(self.latent_shape)
        self.loss_type = loss_type
        self.init_std = init_std
        self.embed = nn.Linear(self.latent_dims, embed_dims)
        self.predictor = nn.Linear(embed_dims, self.latent_dims) if predict_latents else None

    def check_latents(self, latents: torch.Tensor) -> None:
        if tuple(latents.shape[2:]) != self.latent_shape:
            raise ValueError(f'latents of shape {tuple(latents.shape[2:])} per frame, the head '
                             f'expects {self.latent_shape}: check the frame size, the encoder '
                             'and the latent cache the config uses')

    def embed_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, C, h, w) latents -> (B, T, D) embeddings."""
        return self.embed(latents.flatten(2))

    def init_candidates(self, like: torch.Tensor,
                        generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Initial candidates shaped like ``like`` (B, T, C, h, w), N(0, init_std^2)."""
        noise = torch.randn(like.shape, generator=generator, dtype=like.dtype,
                            device='cpu' if generator is not None else like.device)
        return noise.to(like.device) * self.init_std

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, D) features -> (B, T, C, h, w) latents (Transformer++ only)."""
        if self.predictor is None:
            raise RuntimeError('this head was built without predict_latents=True')
        return self.predictor(features).unflatten(-1, self.latent_shape)

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return masked_frame_loss(pred, target, mask, self.loss_type)
