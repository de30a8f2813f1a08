"""Next-frame head: what a candidate frame is, how it starts, is embedded and scored."""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from ebtvision.registry import MODELS
from ..layers.llama import WEIGHT_INITS, check_choice, xavier_normal_

FRAME_LOSSES = ('smooth_l1', 'mse')
#: Where candidates start (the reference code's ``denoising_initial_condition``).
INITIAL_CANDIDATES = ('noise', 'zeros', 'last_frame')


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

    Candidates are latents of the next frame; one learned linear layer embeds real
    frames and candidates alike (4x28x28 = 3136 -> width for the SD VAE at 224 px).
    ``predict_latents=True`` adds the output projection that the Transformer++ baseline
    regresses with.

    Where candidates start (``initial_candidate``): ``'noise'`` N(0, init_std^2) (the
    paper's setting), ``'zeros'``, or ``'last_frame'`` (candidate i starts as real frame
    i, the copy-the-last-frame prediction, which thinking then refines). Note that an
    energy gradient step moves a candidate only inside the row space of the embedding
    (``embed_dims`` of the ``latent_dims`` directions), so noise outside it is never
    removed: with a narrow model the deterministic starts predict better.

    Args:
        latent_shape: (C, h, w) of one frame's latent.
        embed_dims: Transformer width.
        predict_latents: Add the width -> latent projection (Transformer++).
        output_linear: With ``predict_latents``, put a bias-free width -> width linear
            layer before that projection (the reference Transformer++'s ``output``; two
            linear maps in a row, so it changes the parametrisation, not what can be
            expressed).
        loss_type: ``'smooth_l1'`` (the paper's video loss and metric, beta 1) or ``'mse'``.
        initial_candidate: ``'noise'``, ``'zeros'`` or ``'last_frame'``.
        init_std: Std of the ``'noise'`` start.
        weight_init: ``'torch'`` (PyTorch's default) or ``'xavier'`` (Xavier normal, zero
            biases: the reference's) for the linear layers.
        init_cfg: MMEngine init config.
    """

    def __init__(self, latent_shape: Sequence[int], embed_dims: int,
                 predict_latents: bool = False, loss_type: str = 'smooth_l1',
                 initial_candidate: str = 'noise', init_std: float = 1.0,
                 output_linear: bool = False, weight_init: str = 'torch',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss_type not in FRAME_LOSSES:
            raise ValueError(f'loss_type must be one of {FRAME_LOSSES}, got {loss_type!r}')
        if initial_candidate not in INITIAL_CANDIDATES:
            raise ValueError(f'initial_candidate must be one of {INITIAL_CANDIDATES}, got '
                             f'{initial_candidate!r}')
        check_choice('weight_init', weight_init, WEIGHT_INITS)
        if output_linear and not predict_latents:
            raise ValueError('output_linear needs predict_latents=True (it feeds the latent '
                             'projection)')
        self.initial_candidate = initial_candidate
        self.latent_shape = tuple(int(d) for d in latent_shape)
        self.latent_dims = math.prod(self.latent_shape)
        self.loss_type = loss_type
        self.init_std = init_std
        self.embed = nn.Linear(self.latent_dims, embed_dims)
        self.predictor = nn.Linear(embed_dims, self.latent_dims) if predict_latents else None
        self.output_linear = (nn.Linear(embed_dims, embed_dims, bias=False) if output_linear
                              else None)
        if weight_init == 'xavier':
            for linear in (self.embed, self.predictor, self.output_linear):
                if linear is not None:
                    xavier_normal_(linear)
        self._row_space = None  # (weight key, orthonormal basis) of visible_part

    def check_latents(self, latents: torch.Tensor) -> None:
        if tuple(latents.shape[2:]) != self.latent_shape:
            raise ValueError(f'latents of shape {tuple(latents.shape[2:])} per frame, the head '
                             f'expects {self.latent_shape}: check the frame size, the encoder '
                             'and the latent cache the config uses')

    def embed_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, C, h, w) latents -> (B, T, D) embeddings."""
        return self.embed(latents.flatten(2))

    @property
    def random_init(self) -> bool:
        """Whether two starts for the same clip differ."""
        return self.initial_candidate == 'noise'

    def init_candidates(self, real: torch.Tensor, generator: Optional[torch.Generator] = None,
                        noise_std: float = 0.0) -> torch.Tensor:
        """Initial candidates for real frames ``real`` (B, T, C, h, w).

        Args:
            real: The real frames; candidate i predicts frame i + 1.
            generator: CPU generator of the random draws (seeded evaluation).
            noise_std: Extra Gaussian noise on a deterministic start (diversity for
                self-verification), projected with :meth:`visible_part`.
        """

        def randn() -> torch.Tensor:
            return torch.randn(real.shape, generator=generator, dtype=real.dtype,
                               device='cpu' if generator is not None else real.device
                               ).to(real.device)

        if self.initial_candidate == 'noise':
            return randn() * self.init_std
        start = (torch.zeros_like(real) if self.initial_candidate == 'zeros' else
                 real.detach().clone())
        return start + noise_std * self.visible_part(randn()) if noise_std else start

    def visible_part(self, latents: torch.Tensor) -> torch.Tensor:
        """Project latents (B, T, C, h, w) onto the directions the embedding reads.

        The energy sees a candidate only through ``embed`` (latent -> width), so a step
        of gradient descent moves it only within the row space of ``embed.weight``; noise
        outside that space would never be removed. Perturbations for self-verification
        are kept inside it.
        """
        weight = self.embed.weight
        # The QR costs more than a thinking step of a small model: reuse it until the
        # weight changes (optimizer steps bump the tensor's version).
        key = (weight.data_ptr(), weight._version, weight.device)
        if self._row_space is None or self._row_space[0] != key:
            with torch.no_grad():
                self._row_space = (key, torch.linalg.qr(weight.detach().t().float())[0])
        basis = self._row_space[1].to(latents.dtype)  # (L, D)
        with torch.no_grad():
            flat = latents.flatten(2)
            return ((flat @ basis) @ basis.t()).view_as(latents)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, D) features -> (B, T, C, h, w) latents (Transformer++ only)."""
        if self.predictor is None:
            raise RuntimeError('this head was built without predict_latents=True')
        if self.output_linear is not None:
            features = self.output_linear(features)
        return self.predictor(features).unflatten(-1, self.latent_shape)

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return masked_frame_loss(pred, target, mask, self.loss_type)
