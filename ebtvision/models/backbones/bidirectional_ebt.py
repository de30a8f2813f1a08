"""Bidirectional Energy-Based Transformer for images (DiT-like, scalar per patch)."""
import torch
from torch import nn

from ebtvision.registry import MODELS
from ..layers import AdaLNFinalLayer
from .adaln_image_transformer import AdaLNImageTransformer


@MODELS.register_module()
class BidirectionalEBT(AdaLNImageTransformer):
    """Scores an image candidate: one energy per patch, energy = mean over patches.

    The adaLN condition is a single learned vector (there is no timestep: the energy
    landscape itself tells the model how noisy a candidate is). Arguments are those of
    :class:`AdaLNImageTransformer`.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # N(0, 1), the reference's (an nn.Embedding with one row, default init).
        self.learned_condition = nn.Parameter(torch.randn(1, self.embed_dims))
        self.final_layer = AdaLNFinalLayer(self.embed_dims, 1, bias=False)

    def condition(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        # (1, D): broadcast over the batch instead of copied per sample.
        return self.learned_condition

    def patch_energies(self, x: torch.Tensor) -> torch.Tensor:
        """Energy of every patch, shape (B, num_patches)."""
        cond = self.learned_condition
        return self.final_layer(self._run_blocks(x, cond), cond).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Energy of each image, shape (B,)."""
        return self.patch_energies(x).mean(dim=1)
