"""The text mappings: every reference tensor lands on its counterpart of ours."""
import re

import pytest
import torch

from ebtvision.models import EBTLanguageModel, TransformerPPLanguageModel
from ebtvision.reference import MappingError
from ebtvision.reference.text import TEXT_EBT, TEXT_TRANSFORMERPP

ARCH = dict(depth=2, num_heads=2, embed_dims=8)
VOCAB = 12

# Our names -> the reference's (the inverse of the text mappings); ``qkv`` is split below.
_BLOCK, _LAYER = r'backbone\.blocks\.(\d+)\.', r'transformer.layers.\1.'
TO_REFERENCE = (
    (r'thinker\.alpha', 'alpha'),
    (r'head\.token_embed\.weight', 'embeddings.weight'),
    (r'head\.candidate_proj\.weight', 'vocab_to_embed.weight'),
    (r'head\.logits_proj\.weight', 'output.weight'),
    (r'backbone\.step_embed\.weight', 'transformer.time_embeddings.weight'),
    (r'backbone\.energy_head\.weight', 'transformer.final_layer.weight'),
    (r'backbone\.norm\.weight', 'transformer.norm.weight'),
    (_BLOCK + r'proj\.weight', _LAYER + 'attention.wo.weight'),
    (_BLOCK + r'mlp\.gate\.weight', _LAYER + 'feed_forward.w1.weight'),
    (_BLOCK + r'mlp\.up\.weight', _LAYER + 'feed_forward.w3.weight'),
    (_BLOCK + r'mlp\.down\.weight', _LAYER + 'feed_forward.w2.weight'),
    (_BLOCK + r'attn_norm\.weight', _LAYER + 'attention_norm.weight'),
    (_BLOCK + r'mlp_norm\.weight', _LAYER + 'ffn_norm.weight'),
)


def ebt():
    return EBTLanguageModel(
        backbone=dict(type='CausalEBT', arch=ARCH, max_steps=2, step_condition='token',
                      rotary_layout='interleaved'),
        head=dict(type='TextHead', vocab_size=VOCAB, pad_id=0, candidate_embed='linear'),
        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=500.0))


def transformer_pp():
    return TransformerPPLanguageModel(
        backbone=dict(type='CausalTransformer', arch=ARCH, rotary_layout='interleaved'),
        head=dict(type='TextHead', vocab_size=VOCAB, pad_id=0, output_proj='linear'))


def as_reference(state_dict):
    out = {}
    for key, value in state_dict.items():
        fused = re.fullmatch(r'backbone\.blocks\.(\d+)\.qkv\.weight', key)
        if fused:
            for part, chunk in zip(('wq', 'wk', 'wv'), value.chunk(3)):
                out[f'transformer.layers.{fused[1]}.attention.{part}.weight'] = chunk
            continue
        for pattern, replacement in TO_REFERENCE:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise AssertionError(f'the test has no reference name for {key}')
    return out


@pytest.mark.parametrize('build, mapping, extra', [
    (ebt, TEXT_EBT, {'langevin_dynamics_noise_std': torch.tensor(0.0)}),
    (transformer_pp, TEXT_TRANSFORMERPP, {}),
])
def test_text_mappings_put_every_tensor_back_in_place(build, mapping, extra):
    source = build()
    with torch.no_grad():
        for param in source.parameters():
            param.normal_()
    reference = as_reference(source.state_dict()) | extra
    converted = mapping.convert(reference)
    target = build()
    target.load_state_dict(converted, strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    # The reference's query, key and value rows land in that order in our fused weight.
    qkv = converted['backbone.blocks.1.qkv.weight']
    assert torch.equal(qkv[ARCH['embed_dims']:2 * ARCH['embed_dims']],
                       reference['transformer.layers.1.attention.wk.weight'])
    with pytest.raises(MappingError, match='no counterpart'):
        mapping.convert(reference | {'transformer.layers.0.attention.cache_k': torch.zeros(1)})


def test_transformer_pp_mapping_refuses_ebt_weights():
    # A reference EBT checkpoint holds an energy layer the baseline has no place for.
    reference = as_reference(ebt().state_dict())
    with pytest.raises(MappingError, match='no counterpart'):
        TEXT_TRANSFORMERPP.convert(reference)
