"""Video families: the reference's ``EBT_VID`` (``--ebt_type time_embed``) and its
Transformer++ baseline ``Baseline_Transformer_VID``.

Ours must be built with the reference's layout for these weights to mean the same:
``rotary_layout='interleaved'`` on the backbone, ``step_condition='token'`` on the EBT
and ``output_linear=True`` on the Transformer++ head (the SSv2 paper configs do).
The reference's down / up projections between the 3136-dim SD-VAE latent and the width
are our head's ``embed`` / ``predictor``; its frozen VAE is ours to load, not mapped.
"""
from .llama import EBT_EXTRAS, FUSED_QKV, LANGEVIN_STD, LLAMA_BLOCKS
from .mapping import StateDictMapping

# The 3136 -> width projection of the latents.
_DOWN_PROJECTION = ((r'encoder_down_projection\.(weight|bias)', r'head.embed.\1'), )
# The frozen SD VAE (ours loads it from its own pretrained weights).
_FROZEN_ENCODER = r'image_encoder\..*'

VIDEO_EBT = StateDictMapping(
    concats=FUSED_QKV,
    renames=LLAMA_BLOCKS + _DOWN_PROJECTION + EBT_EXTRAS,
    ignore=(_FROZEN_ENCODER, LANGEVIN_STD),
)

VIDEO_TRANSFORMERPP = StateDictMapping(
    concats=FUSED_QKV,
    renames=LLAMA_BLOCKS + _DOWN_PROJECTION + (
        (r'output\.weight', 'head.output_linear.weight'),
        (r'encoder_up_projection\.(weight|bias)', r'head.predictor.\1'),
    ),
    ignore=(_FROZEN_ENCODER, ),
)
