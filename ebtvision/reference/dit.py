"""The reference's DiT denoiser (``Diffusion_Transformer_IMG_Denoise``) in ours
(:class:`DiTDenoiser`)."""
from .image import _ADALN_BLOCKS, _prefixed
from .mapping import StateDictMapping

# The reference holds its DiT as ``diffusion_transformer``; blocks, patch embedding and
# final layer are named as in the image EBT, the timestep MLP identically on both sides.
# Its learned-sigma output channels need nothing here: the final layer's shape says
# whether a checkpoint learned sigma (ours: ``backbone.learn_sigma``).
IMAGE_DIT = StateDictMapping(
    renames=_prefixed('diffusion_transformer', 'backbone', _ADALN_BLOCKS + (
        (r't_embedder\.mlp\.(0|2)\.(weight|bias)', r't_embedder.mlp.\1.\2'),
    )),
    # Fixed sin-cos positions, recomputed (equal) by our backbone.
    ignore=(r'diffusion_transformer\.pos_embed', ),
)
