"""The reference's Llama blocks (``transformer.layers.N``), shared by its causal models:
the text and video EBTs (``model/ar_ebt_time_embed.py``) and the Transformer++
(``model/ar_transformer.py``) name their weights alike."""
_LAYER, _BLOCK = r'transformer\.layers\.(\d+)\.', r'backbone.blocks.\1.'

# Separate query / key / value weights become our fused qkv.
FUSED_QKV = (
    (tuple(_LAYER + rf'attention\.w{name}\.weight' for name in 'qkv'), _BLOCK + 'qkv.weight', 0),
)
LLAMA_BLOCKS = (
    (_LAYER + r'attention\.wo\.weight', _BLOCK + 'proj.weight'),
    # SwiGLU: w1 is the gated branch, w3 the linear one, w2 the output.
    (_LAYER + r'feed_forward\.w1\.weight', _BLOCK + 'mlp.gate.weight'),
    (_LAYER + r'feed_forward\.w3\.weight', _BLOCK + 'mlp.up.weight'),
    (_LAYER + r'feed_forward\.w2\.weight', _BLOCK + 'mlp.down.weight'),
    (_LAYER + r'attention_norm\.weight', _BLOCK + 'attn_norm.weight'),
    (_LAYER + r'ffn_norm\.weight', _BLOCK + 'mlp_norm.weight'),
    (r'transformer\.norm\.weight', 'backbone.norm.weight'),
)
# The EBTs' step token and energy head.
EBT_EXTRAS = (
    (r'transformer\.time_embeddings\.weight', 'backbone.step_embed.weight'),
    (r'transformer\.final_layer\.weight', 'backbone.energy_head.weight'),
    (r'alpha', 'thinker.alpha'),
)
# The Langevin std is a setting of ours (thinker.langevin_sigma), not a weight.
LANGEVIN_STD = r'langevin_dynamics_noise_std'
