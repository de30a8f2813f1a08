"""Text families: the reference's ``EBT_NLP`` (``ebt_type='time_embed'``) and its
``Baseline_Transformer_NLP`` (our Transformer++).

Both use the reference's Llama blocks (``transformer.layers.N``), whose separate query /
key / value weights are fused into our ``qkv``; the rotary pairing of its queries and
keys is the backbone's ``rotary_layout='interleaved'``. Its token embedding, untied
probability-to-embedding layer (``vocab_to_embed``) and untied output layer live in our
:class:`TextHead` (``candidate_embed='linear'``, ``output_proj='linear'``).
"""
from .llama import EBT_EXTRAS, FUSED_QKV, LANGEVIN_STD, LLAMA_BLOCKS
from .mapping import StateDictMapping

_TOKEN_EMBEDDING = ((r'embeddings\.weight', 'head.token_embed.weight'), )

TEXT_EBT = StateDictMapping(
    concats=FUSED_QKV,
    renames=LLAMA_BLOCKS + _TOKEN_EMBEDDING + EBT_EXTRAS + (
        (r'vocab_to_embed\.weight', 'head.candidate_proj.weight'), ),
    ignore=(LANGEVIN_STD, ),
)

TEXT_TRANSFORMERPP = StateDictMapping(
    concats=FUSED_QKV,
    renames=LLAMA_BLOCKS + _TOKEN_EMBEDDING + ((r'output\.weight', 'head.logits_proj.weight'), ),
)
