"""Patch, position and timestep embeddings for the image transformers."""
import math

import torch
from torch import nn


def sincos_2d_position_embedding(embed_dims: int, grid_size: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding of a square patch grid.

    Half of the channels encode the row, half the column; each half is the 1-D
    sin/cos embedding with frequencies 1 / 10000^(2i/d) (as in MAE and DiT).

    Returns:
        Tensor of shape ``(grid_size * grid_size, embed_dims)``, rows in raster order.
    """
    if embed_dims % 4:
        raise ValueError(f'embed_dims must be divisible by 4 for 2-D sin-cos, got {embed_dims}')
    quarter = embed_dims // 4
    omega = 1.0 / 10000**(torch.arange(quarter, dtype=torch.float64) / quarter)
    coords = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing='ij')

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    # Column coordinate first, then row: the layout DiT checkpoints use.
    return torch.cat([encode(cols), encode(rows)], dim=1).float()


class PatchEmbed(nn.Module):
    """Split an image into non-overlapping patches and project each to a token.

    Args:
        img_size: Square input size in pixels.
        patch_size: Patch side in pixels; must divide ``img_size``.
        in_channels: Input channels.
        embed_dims: Token width.
    """

    def __init__(self, img_size: int, patch_size: int, in_channels: int, embed_dims: int) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f'img_size={img_size} is not divisible by patch_size={patch_size}')
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f'expected {self.img_size}x{self.img_size} inputs, '
                             f'got {tuple(x.shape[-2:])}')
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    """Embed integer diffusion timesteps: sinusoidal features followed by an MLP."""

    def __init__(self, embed_dims: int, frequency_dims: int = 256,
                 max_period: float = 10000.0) -> None:
        super().__init__()
        self.frequency_dims = frequency_dims
        self.max_period = max_period
        self.mlp = nn.Sequential(
            nn.Linear(frequency_dims, embed_dims), nn.SiLU(), nn.Linear(embed_dims, embed_dims))

    def sinusoid(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequency_dims // 2
        freqs = torch.exp(-math.log(self.max_period) *
                          torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t.float().reshape(-1, 1) * freqs.reshape(1, -1)
        return torch.cat([args.cos(), args.sin()], dim=1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # The features follow the MLP's dtype (float64 runs, e.g. the parity check).
        return self.mlp(self.sinusoid(t).to(self.mlp[0].weight.dtype))
