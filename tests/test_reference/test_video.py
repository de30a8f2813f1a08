"""The video mappings: every reference tensor lands on its counterpart of ours."""
import re

import pytest
import torch

from ebtvision.models import EBTNextFrame, TransformerPPNextFrame
from ebtvision.reference import MappingError
from ebtvision.reference.video import VIDEO_EBT, VIDEO_TRANSFORMERPP

ARCH = dict(depth=2, num_heads=2, embed_dims=8)
LATENT = (4, 2, 2)
BACKBONE = dict(arch=ARCH, mlp_ratio=1.5, rotary_layout='interleaved')

# Our names -> the reference's (the inverse of the video mappings); ``qkv`` is split below.
_BLOCK, _LAYER = r'backbone\.blocks\.(\d+)\.', r'transformer.layers.\1.'
TO_REFERENCE = (
    (r'thinker\.alpha', 'alpha'),
    (r'head\.embed\.(weight|bias)', r'encoder_down_projection.\1'),
    (r'head\.predictor\.(weight|bias)', r'encoder_up_projection.\1'),
    (r'head\.output_linear\.weight', 'output.weight'),
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


def as_reference(state_dict):
    out = {}
    for key, value in state_dict.items():
        qkv = re.fullmatch(_BLOCK + r'qkv\.weight', key)
        if qkv:
            for name, part in zip('qkv', value.chunk(3)):
                out[f'transformer.layers.{qkv.group(1)}.attention.w{name}.weight'] = part
            continue
        for pattern, replacement in TO_REFERENCE:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise AssertionError(f'no reference name for {key}')
    # What a reference checkpoint also holds: the frozen VAE.
    out['image_encoder.encoder.conv_in.weight'] = torch.zeros(128, 3, 3, 3)
    return out


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
    source = build()
    with torch.no_grad():
        for param in source.parameters():
            param.normal_()
    reference = dict(as_reference(source.state_dict()), **extra)
    target = build()
    target.load_state_dict(mapping.convert(reference), strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
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
