"""The video mappings: every reference tensor lands on its counterpart of ours."""
import pytest
import torch

from ebtvision.models import EBTNextFrame, TransformerPPNextFrame
from ebtvision.reference import MappingError
from ebtvision.reference.video import VIDEO_EBT, VIDEO_TRANSFORMERPP
from .naming import CAUSAL_EBT, LLAMA, assert_round_trip

ARCH = dict(depth=2, num_heads=2, embed_dims=8)
LATENT = (4, 2, 2)
BACKBONE = dict(arch=ARCH, mlp_ratio=1.5, rotary_layout='interleaved')

TO_REFERENCE = LLAMA + CAUSAL_EBT + (
    (r'head\.embed\.(weight|bias)', r'encoder_down_projection.\1'),
    (r'head\.predictor\.(weight|bias)', r'encoder_up_projection.\1'),
    (r'head\.output_linear\.weight', 'output.weight'),
)
# What a reference checkpoint also holds: the frozen VAE.
VAE = {'image_encoder.encoder.conv_in.weight': torch.zeros(128, 3, 3, 3)}


def tiny_ebt():
    return EBTNextFrame(
        backbone=dict(type='CausalEBT', max_steps=2, step_condition='token', **BACKBONE),
        head=dict(type='NextFrameHead'), latent_shape=LATENT,
        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=10.0))


def tiny_transformer_pp():
    return TransformerPPNextFrame(
        backbone=dict(type='CausalTransformer', **BACKBONE),
        head=dict(type='NextFrameHead', output_linear=True), latent_shape=LATENT)


@pytest.mark.parametrize('build, mapping, extra', [
    (tiny_ebt, VIDEO_EBT, {'langevin_dynamics_noise_std': torch.tensor(1.0)}),
    (tiny_transformer_pp, VIDEO_TRANSFORMERPP, {}),
])
def test_video_mapping_puts_every_tensor_back_in_place(build, mapping, extra):
    torch.manual_seed(0)
    reference = assert_round_trip(build, mapping, TO_REFERENCE, {**VAE, **extra})
    with pytest.raises(MappingError, match='no counterpart'):
        mapping.convert(dict(reference, **{'transformer.extra.weight': torch.zeros(1)}))


def test_ebt_mapping_fuses_query_key_value_in_that_order():
    wq, wk, wv = torch.full((8, 8), 1.0), torch.full((8, 8), 2.0), torch.full((8, 8), 3.0)
    converted = VIDEO_EBT.convert({'transformer.layers.0.attention.wq.weight': wq,
                                   'transformer.layers.0.attention.wk.weight': wk,
                                   'transformer.layers.0.attention.wv.weight': wv})
    assert torch.equal(converted['backbone.blocks.0.qkv.weight'], torch.cat([wq, wk, wv]))
    with pytest.raises(MappingError, match='incomplete'):
        VIDEO_EBT.convert({'transformer.layers.0.attention.wq.weight': wq})
