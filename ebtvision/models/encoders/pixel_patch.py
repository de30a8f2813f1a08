"""Weight-free pixel encoder: space-to-depth patches (``pixel_unshuffle``)."""
import torch
import torch.nn.functional as F

from ebtvision.registry import MODELS
from .base_encoder import BaseFrameEncoder


@MODELS.register_module()
class PixelPatchEncoder(BaseFrameEncoder):
    """Encode frames as non-overlapping pixel patches stacked on the channel axis.

    A ``(3, H, W)`` frame becomes ``(3 * p * p, H / p, W / p)`` (``p = patch_size``), e.g.
    ``(3, 32, 32) -> (48, 8, 8)`` with ``p = 4``; :meth:`decode` is the exact inverse
    (``pixel_shuffle``). Needs no weights, so quick-start configs and tests run offline.

    Args:
        patch_size: Side ``p`` of a patch (the downsampling factor).
        scale: Latents are ``scale * patches``; :meth:`decode` divides it back out.
        init_cfg: MMEngine init config (unused: there is nothing to initialise).
    """

    def __init__(self, patch_size: int = 4, scale: float = 1.0, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if int(patch_size) != patch_size or patch_size < 1:
            raise ValueError(f'patch_size must be a positive int, got {patch_size!r}')
        if not scale:
            raise ValueError('scale must be non-zero (decode divides by it)')
        self.patch_size = int(patch_size)
        self.scale = float(scale)
        self.downsample_factor = self.patch_size
        self.latent_channels = 3 * self.patch_size**2
        self._freeze()

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` frames in ``[-1, 1]`` -> ``(N, 3 p^2, H / p, W / p)`` float32."""
        self._check_frames(frames)
        latents = F.pixel_unshuffle(frames.float(), self.patch_size)
        return latents * self.scale if self.scale != 1.0 else latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(N, 3 p^2, h, w)`` latents -> ``(N, 3, h p, w p)`` frames clamped to ``[-1, 1]``."""
        self._check_latents(latents)
        latents = latents.float()
        if self.scale != 1.0:
            latents = latents / self.scale
        return F.pixel_shuffle(latents, self.patch_size).clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f'patch_size={self.patch_size}, scale={self.scale}'
