"""Video families: the reference's ``EBT_VID`` (``--ebt_type time_embed``) and its
Transformer++ baseline ``Baseline_Transformer_VID``.

Ours must be built with the reference's layout for these weights to mean the same:
``rotary_layout='interleaved'`` on the backbone, ``step_condition='token'`` on the EBT
and ``output_linear=True`` on the Transformer++ head (the SSv2 paper configs do).
The reference's down / up projections between the 3136-dim SD-VAE latent and the width
are our head's ``embed`` / ``predictor``; its frozen VAE is ours to load, not mapped.
"""
from .mapping import StateDictMapping

# Llama blocks of model/ar_ebt_time_embed.py and model/ar_transformer.py (same names):
# separate query / key / value weights become our fused qkv.
_LAYER, _BLOCK = r'transformer\.layers\.(\d+)\.', r'backbone.blocks.\1.'
_LLAMA_CONCATS = (
    (tuple(_LAYER + rf'attention\.w{name}\.weight' for name in 'qkv'), _BLOCK + 'qkv.weight', 0),
)
_LLAMA_RENAMES = (
    (_LAYER + r'attention\.wo\.weight', _BLOCK + 'proj.weight'),
    # SwiGLU: w1 is the gated branch, w3 the linear one, w2 the output.
    (_LAYER + r'feed_forward\.w1\.weight', _BLOCK + 'mlp.gate.weight'),
    (_LAYER + r'feed_forward\.w3\.weight', _BLOCK + 'mlp.up.weight'),
    (_LAYER + r'feed_forward\.w2\.weight', _BLOCK + 'mlp.down.weight'),
    (_LAYER + r'attention_norm\.weight', _BLOCK + 'attn_norm.weight'),
    (_LAYER + r'ffn_norm\.weight', _BLOCK + 'mlp_norm.weight'),
    (r'transformer\.norm\.weight', 'backbone.norm.weight'),
    (r'encoder_down_projection\.(weight|bias)', r'head.embed.\1'),
)
# The frozen SD VAE (ours loads it from its own pretrained weights).
_FROZEN_ENCODER = r'image_encoder\..*'

VIDEO_EBT = StateDictMapping(
    concats=_LLAMA_CONCATS,
    renames=_LLAMA_RENAMES + (
        (r'transformer\.time_embeddings\.weight', 'backbone.step_embed.weight'),
        (r'transformer\.final_layer\.weight', 'backbone.energy_head.weight'),
        (r'alpha', 'thinker.alpha'),
    ),
    # The Langevin std is a setting of ours (thinker.langevin_sigma), not a weight.
    ignore=(_FROZEN_ENCODER, r'langevin_dynamics_noise_std'),
)

VIDEO_TRANSFORMERPP = StateDictMapping(
    concats=_LLAMA_CONCATS,
    renames=_LLAMA_RENAMES + (
        (r'output\.weight', 'head.output_linear.weight'),
        (r'encoder_up_projection\.(weight|bias)', r'head.predictor.\1'),
    ),
    ignore=(_FROZEN_ENCODER, ),
)
