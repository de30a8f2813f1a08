"""The image mappings: the reference's EBT and DiT denoiser weights in ours."""
import pytest
import torch

from ebtvision.models import DiTDenoiser, EBTDenoiser
from ebtvision.reference import FAMILIES, MappingError
from ebtvision.reference.image import IMAGE_DIT
from .naming import as_reference, assert_round_trip

SIZE = dict(depth=2, num_heads=2, embed_dims=32)


def adaln_names(prefix):
    """Our image backbone -> the reference's transformer held as ``prefix``."""
    return ((r'backbone\.patch_embed\.(.*)', rf'{prefix}.x_embedder.\1'),
            (r'backbone\.blocks\.(\d+)\.mlp\.0\.(.*)', rf'{prefix}.blocks.\1.mlp.fc1.\2'),
            (r'backbone\.blocks\.(\d+)\.mlp\.2\.(.*)', rf'{prefix}.blocks.\1.mlp.fc2.\2'),
            (r'backbone\.(.*)', rf'{prefix}.\1'))


EBT_TO_REFERENCE = ((r'backbone\.learned_condition', 'learned_adaln_condition.weight'),
                    (r'thinker\.alpha', 'alpha')) + adaln_names('transformer')
# What the reference's EBT also stores: its fixed positions and the Langevin std.
EBT_EXTRAS = {'transformer.pos_embed': torch.zeros(1, 16, 32),
              'langevin_dynamics_noise_std': torch.tensor(0.0)}


def tiny_ebt():
    return EBTDenoiser(
        backbone=dict(type='BidirectionalEBT', arch=SIZE, img_size=16, patch_size=4,
                      mlp_ratio=1.0),
        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=3000.0))


def as_reference_ebt(state_dict):
    """``state_dict`` of :func:`tiny_ebt` as the reference's EBT_IMG_Denoise holds it."""
    return {**as_reference(state_dict, EBT_TO_REFERENCE), **EBT_EXTRAS}


def test_image_ebt_mapping_puts_every_tensor_back_in_place():
    assert_round_trip(tiny_ebt, FAMILIES['image_ebt'], EBT_TO_REFERENCE, EBT_EXTRAS)


@pytest.mark.parametrize('learn_sigma', [False, True])
def test_dit_mapping_puts_every_tensor_back_in_place(learn_sigma):
    def build():
        return DiTDenoiser(backbone=dict(type='DiT', arch=SIZE, img_size=16, patch_size=4,
                                         mlp_ratio=1.0, learn_sigma=learn_sigma))

    reference = assert_round_trip(build, IMAGE_DIT, adaln_names('diffusion_transformer'),
                                  {'diffusion_transformer.pos_embed': torch.zeros(1, 16, 32)})
    # The learned-sigma head has twice the outputs: p * p * 3 -> p * p * 6.
    assert reference['diffusion_transformer.final_layer.linear.weight'].shape[0] == \
        16 * 3 * (2 if learn_sigma else 1)


def test_dit_mapping_refuses_unknown_keys():
    with pytest.raises(MappingError, match='diffusion_transformer.y_embedder'):
        IMAGE_DIT.convert({'diffusion_transformer.y_embedder.weight': torch.zeros(1)})
