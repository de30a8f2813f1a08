"""The image transformer shared by the bidirectional EBT and the DiT baseline."""
from typing import Optional, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from ..layers import AdaLNBlock, PatchEmbed, call_block, sincos_2d_position_embedding
from .arch_settings import resolve_arch


class AdaLNImageTransformer(BaseModule):
    """Patch embedding + fixed 2-D sin-cos positions + adaLN-Zero blocks.

    Subclasses decide where the condition vector comes from and what the final layer
    outputs. ``forward_features`` returns the final patch tokens (before the output
    layer), which the linear probe uses.

    Args:
        arch: A size name from :data:`ARCH_SETTINGS` or a dict with ``depth``,
            ``num_heads`` and ``embed_dims``.
        img_size: Square input size.
        patch_size: Patch side.
        in_channels: Input channels.
        mlp_ratio: MLP width relative to the token width.
        fused: Train with the hand-derived fused adaLN block (one twice-differentiable
            node per block; see :class:`AdaLNBlock`). Default: where training is second
            order (the EBT); the DiT's first-order training runs the plain modules with
            PyTorch's fused attention kernels.
        with_cp: Activation checkpointing of every block in training: less memory, one
            more forward of each block per backward (see :func:`call_block`).
        init_cfg: MMEngine init config (e.g. ``dict(type='Pretrained', checkpoint=...)``).
    """

    #: Whether training differentiates through the network's gradient (an EBT's energy
    #: gradient); decides the attention kernels and the default of ``fused``.
    SECOND_ORDER = True

    def __init__(self, arch: Union[str, dict] = 'xs', img_size: int = 128, patch_size: int = 16,
                 in_channels: int = 3, mlp_ratio: float = 4.0, fused: Optional[bool] = None,
                 with_cp: bool = False, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.fused = self.SECOND_ORDER if fused is None else fused
        self.with_cp = with_cp
        settings = resolve_arch(arch)
        self.embed_dims = settings['embed_dims']
        self.depth = settings['depth']
        self.num_heads = settings['num_heads']
        self.img_size = img_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.patch_embed = PatchEmbed(img_size, patch_size, in_channels, self.embed_dims)
        self.register_buffer(
            'pos_embed',
            sincos_2d_position_embedding(self.embed_dims, self.patch_embed.grid_size)[None],
            persistent=False)
        self.blocks = nn.ModuleList(
            AdaLNBlock(self.embed_dims, self.num_heads, mlp_ratio, fused=self.fused,
                       second_order=self.SECOND_ORDER) for _ in range(self.depth))
        # Patch projection initialised like a linear layer, as in DiT.
        weight = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)

    def condition(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """The (B or 1, D) condition vector driving every adaLN layer."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Final patch tokens, shape (B, num_patches, embed_dims)."""
        return self._run_blocks(x, self.condition(x, **kwargs))

    def _run_blocks(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            tokens = call_block(block, tokens, cond, with_cp=self.with_cp)
        return tokens
