"""DiT baseline: the same transformer, conditioned on the timestep, predicting noise."""
import torch

from ebtvision.registry import MODELS
from ..layers import AdaLNFinalLayer, TimestepEmbedder
from .adaln_image_transformer import AdaLNImageTransformer


@MODELS.register_module()
class DiT(AdaLNImageTransformer):
    """Diffusion transformer predicting the noise of a noisy image at timestep ``t``.

    Args:
        learn_sigma: Also predict, per pixel, where the reverse step's variance lies
            between the posterior's and ``beta_t`` (a value in [-1, 1]; see
            :meth:`DDPMSchedule.learned_log_variance`): the output then has twice the
            input channels, the noise first.
        **kwargs: See :class:`AdaLNImageTransformer`.
    """

    SECOND_ORDER = False  # trained on a plain noise-prediction loss

    def __init__(self, learn_sigma: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(learn_sigma, bool):
            raise TypeError(f'learn_sigma must be True or False, got {learn_sigma!r}')
        self.learn_sigma = learn_sigma
        self.out_channels = self.in_channels * (2 if learn_sigma else 1)
        self.t_embedder = TimestepEmbedder(self.embed_dims)
        # DiT's initialisation: small normal weights, zero biases.
        for layer in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
            torch.nn.init.normal_(layer.weight, std=0.02)
            torch.nn.init.zeros_(layer.bias)
        out_dims = self.patch_size * self.patch_size * self.out_channels
        self.final_layer = AdaLNFinalLayer(self.embed_dims, out_dims, bias=True)

    def condition(self, x: torch.Tensor, t: torch.Tensor = None) -> torch.Tensor:
        if t is None:
            raise ValueError('DiT needs the timestep t (the linear probe feeds t = 0)')
        t = torch.as_tensor(t, device=x.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(x.shape[0])
        return self.t_embedder(t)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, p*p*C) tokens back to a (B, C, H, W) image (C: ``out_channels``)."""
        batch, p, c, g = tokens.shape[0], self.patch_size, self.out_channels, \
            self.patch_embed.grid_size
        x = tokens.reshape(batch, g, g, p, p, c)
        return torch.einsum('bhwpqc->bchpwq', x).reshape(batch, c, g * p, g * p)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise, shaped like ``x`` (with ``learn_sigma``, followed along the
        channels by the variance values)."""
        cond = self.condition(x, t)
        return self.unpatchify(self.final_layer(self._run_blocks(x, cond), cond))
