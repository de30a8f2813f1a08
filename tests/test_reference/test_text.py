"""The text mappings: every reference tensor lands on its counterpart of ours."""
import pytest
import torch

from ebtvision.models import EBTLanguageModel, TransformerPPLanguageModel
from ebtvision.reference import MappingError
from ebtvision.reference.text import TEXT_EBT, TEXT_TRANSFORMERPP
from .naming import CAUSAL_EBT, LLAMA, as_reference, assert_round_trip

ARCH = dict(depth=2, num_heads=2, embed_dims=8)
VOCAB = 12

TO_REFERENCE = LLAMA + CAUSAL_EBT + (
    (r'head\.token_embed\.weight', 'embeddings.weight'),
    (r'head\.candidate_proj\.weight', 'vocab_to_embed.weight'),
    (r'head\.logits_proj\.weight', 'output.weight'),
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


@pytest.mark.parametrize('build, mapping, extra', [
    (ebt, TEXT_EBT, {'langevin_dynamics_noise_std': torch.tensor(0.0)}),
    (transformer_pp, TEXT_TRANSFORMERPP, {}),
])
def test_text_mappings_put_every_tensor_back_in_place(build, mapping, extra):
    reference = assert_round_trip(build, mapping, TO_REFERENCE, extra)
    converted = mapping.convert(reference)
    # The reference's query, key and value rows land in that order in our fused weight.
    qkv = converted['backbone.blocks.1.qkv.weight']
    assert torch.equal(qkv[ARCH['embed_dims']:2 * ARCH['embed_dims']],
                       reference['transformer.layers.1.attention.wk.weight'])
    with pytest.raises(MappingError, match='no counterpart'):
        mapping.convert(reference | {'transformer.layers.0.attention.cache_k': torch.zeros(1)})


def test_transformer_pp_mapping_refuses_ebt_weights():
    # A reference EBT checkpoint holds an energy layer the baseline has no place for.
    reference = as_reference(ebt().state_dict(), TO_REFERENCE)
    with pytest.raises(MappingError, match='no counterpart'):
        TEXT_TRANSFORMERPP.convert(reference)
