"""Text families: the reference's ``EBT_NLP`` (``ebt_type='time_embed'``) and its
``Baseline_Transformer_NLP`` (our Transformer++).

Both use the reference's Llama blocks (``transformer.layers.N``), whose separate query /
key / value weights are fused into our ``qkv``; the rotary pairing of its queries and
keys is the backbone's ``rotary_layout='interleaved'``. Its token embedding, untied
probability-to-embedding layer (``vocab_to_embed``) and untied output layer live in our
:class:`TextHead` (``candidate_embed='linear'``, ``output_proj='linear'``).
"""
from .mapping import StateDictMapping

_BLOCK = r'transformer\.layers\.(\d+)\.'

# Llama blocks: attention, SwiGLU (w1 = gate, w3 = up, w2 = down) and both RMSNorms.
_LLAMA_BLOCKS = (
    (_BLOCK + r'attention\.wo\.weight', r'backbone.blocks.\1.proj.weight'),
    (_BLOCK + r'feed_forward\.w1\.weight', r'backbone.blocks.\1.mlp.gate.weight'),
    (_BLOCK + r'feed_forward\.w3\.weight', r'backbone.blocks.\1.mlp.up.weight'),
    (_BLOCK + r'feed_forward\.w2\.weight', r'backbone.blocks.\1.mlp.down.weight'),
    (_BLOCK + r'attention_norm\.weight', r'backbone.blocks.\1.attn_norm.weight'),
    (_BLOCK + r'ffn_norm\.weight', r'backbone.blocks.\1.mlp_norm.weight'),
    (r'transformer\.norm\.weight', 'backbone.norm.weight'),
    (r'embeddings\.weight', 'head.token_embed.weight'),
)
_FUSED_QKV = (
    ((_BLOCK + r'attention\.wq\.weight', _BLOCK + r'attention\.wk\.weight',
      _BLOCK + r'attention\.wv\.weight'), r'backbone.blocks.\1.qkv.weight', 0),
)

TEXT_EBT = StateDictMapping(
    renames=_LLAMA_BLOCKS + (
        (r'vocab_to_embed\.weight', 'head.candidate_proj.weight'),
        (r'transformer\.time_embeddings\.weight', 'backbone.step_embed.weight'),
        (r'transformer\.final_layer\.weight', 'backbone.energy_head.weight'),
        (r'alpha', 'thinker.alpha'),
    ),
    concats=_FUSED_QKV,
    # The Langevin std is a setting of ours (thinker.langevin_sigma), not a weight.
    ignore=(r'langevin_dynamics_noise_std', ),
)

TEXT_TRANSFORMERPP = StateDictMapping(
    renames=_LLAMA_BLOCKS + ((r'output\.weight', 'head.logits_proj.weight'), ),
    concats=_FUSED_QKV,
)
