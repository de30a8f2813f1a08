import re

import torch

from ebtvision.models import EBTDenoiser
from ebtvision.reference import FAMILIES

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
