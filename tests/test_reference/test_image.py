import re

import pytest
import torch

from ebtvision.models import DiTDenoiser, EBTDenoiser
from ebtvision.reference import FAMILIES, MappingError
from ebtvision.reference.image import IMAGE_DIT

# Our names -> the reference's (the inverse of the image EBT mapping), for building a
# checkpoint as the reference's EBT_IMG_Denoise would write it.
TO_REFERENCE = (
    (r'backbone\.learned_condition', 'learned_adaln_condition.weight'),
    (r'thinker\.alpha', 'alpha'),
    (r'backbone\.patch_embed\.(.*)', r'transformer.x_embedder.\1'),
    (r'backbone\.blocks\.(\d+)\.mlp\.0\.(.*)', r'transformer.blocks.\1.mlp.fc1.\2'),
    (r'backbone\.blocks\.(\d+)\.mlp\.2\.(.*)', r'transformer.blocks.\1.mlp.fc2.\2'),
    (r'backbone\.(.*)', r'transformer.\1'),
)


def tiny_ebt():
    return EBTDenoiser(
        backbone=dict(type='BidirectionalEBT', arch=dict(depth=2, num_heads=2, embed_dims=32),
                      img_size=16, patch_size=4, mlp_ratio=1.0),
        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=3000.0))


def as_reference(state_dict):
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in TO_REFERENCE:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
    # What the reference also stores: its fixed positions and the Langevin std.
    out['transformer.pos_embed'] = torch.zeros(1, 16, 32)
    out['langevin_dynamics_noise_std'] = torch.tensor(0.0)
    return out


def test_image_ebt_mapping_puts_every_tensor_back_in_place():
    source = tiny_ebt()
    with torch.no_grad():
        for param in source.parameters():
            param.normal_()
    converted = FAMILIES['image_ebt'].convert(as_reference(source.state_dict()))
    target = tiny_ebt()
    target.load_state_dict(converted, strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


# Our names -> the reference's (Diffusion_Transformer_IMG_Denoise), written out by hand.
OURS_TO_REFERENCE = (
    (r'backbone\.patch_embed\.proj\.(weight|bias)', r'diffusion_transformer.x_embedder.proj.\1'),
    (r'backbone\.t_embedder\.mlp\.(0|2)\.(weight|bias)',
     r'diffusion_transformer.t_embedder.mlp.\1.\2'),
    (r'backbone\.blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)',
     r'diffusion_transformer.blocks.\1.attn.\2.\3'),
    (r'backbone\.blocks\.(\d+)\.mlp\.0\.(weight|bias)',
     r'diffusion_transformer.blocks.\1.mlp.fc1.\2'),
    (r'backbone\.blocks\.(\d+)\.mlp\.2\.(weight|bias)',
     r'diffusion_transformer.blocks.\1.mlp.fc2.\2'),
    (r'backbone\.blocks\.(\d+)\.adaLN_modulation\.1\.(weight|bias)',
     r'diffusion_transformer.blocks.\1.adaLN_modulation.1.\2'),
    (r'backbone\.final_layer\.(linear|adaLN_modulation\.1)\.(weight|bias)',
     r'diffusion_transformer.final_layer.\1.\2'),
)


def reference_names(state):
    out = {}
    for key, value in state.items():
        for pattern, replacement in OURS_TO_REFERENCE:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise AssertionError(f'no reference name for {key}')
    return out


@pytest.mark.parametrize('learn_sigma', [False, True])
def test_dit_mapping_puts_every_tensor_back_in_place(learn_sigma):
    torch.manual_seed(0)
    model = DiTDenoiser(backbone=dict(
        type='DiT', arch=dict(depth=2, num_heads=2, embed_dims=16), img_size=16, patch_size=4,
        mlp_ratio=1.0, learn_sigma=learn_sigma))
    ours = {key: torch.randn_like(value) for key, value in model.state_dict().items()}
    reference = reference_names(ours)
    # the reference also stores its fixed positions, which ours recomputes
    reference['diffusion_transformer.pos_embed'] = model.backbone.pos_embed.clone()
    converted = IMAGE_DIT.convert(reference)
    assert converted.keys() == ours.keys()
    for key, value in ours.items():
        assert torch.equal(converted[key], value), key
    model.load_state_dict(converted)  # shapes fit, strictly
    # the learned-sigma head has twice the outputs: p*p*3 -> p*p*6
    assert converted['backbone.final_layer.linear.weight'].shape[0] == 16 * 3 * (
        2 if learn_sigma else 1)


def test_dit_mapping_refuses_unknown_keys():
    with pytest.raises(MappingError, match='diffusion_transformer.y_embedder'):
        IMAGE_DIT.convert({'diffusion_transformer.y_embedder.weight': torch.zeros(1)})
