"""Bidirectional EBT and DiT backbones: shapes, energies, gradients, sizes."""
import pytest
import torch

from ebtvision.models import ARCH_SETTINGS, BidirectionalEBT, DiT, resolve_arch
from ebtvision.models.layers import sincos_2d_position_embedding

TINY = dict(arch=dict(depth=2, num_heads=2, embed_dims=16), img_size=16, patch_size=4)


def perturbed(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def test_ebt_energy_shapes_and_features():
    model = BidirectionalEBT(**TINY)
    x = torch.randn(3, 3, 16, 16)
    assert model(x).shape == (3, )
    assert model.patch_energies(x).shape == (3, 16)
    assert model.forward_features(x).shape == (3, 16, 16)
    torch.testing.assert_close(model(x), model.patch_energies(x).mean(1))


def test_ebt_starts_flat_then_has_input_gradients():
    model = BidirectionalEBT(**TINY)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    # adaLN-Zero and a zero energy layer: every image has energy 0 at initialisation.
    assert model(x).abs().max() == 0
    perturbed(model)
    grad, = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    assert grad.shape == x.shape and grad.abs().sum() > 0
    # the gradient is itself differentiable w.r.t. the weights (second order)
    second, = torch.autograd.grad(grad.pow(2).sum(), model.final_layer.linear.weight)
    assert second.abs().sum() > 0


def test_energy_depends_on_every_patch():
    model = perturbed(BidirectionalEBT(**TINY))
    x = torch.randn(1, 3, 16, 16)
    y = x.clone()
    y[..., 12:, 12:] += 1.0  # only the last patch changes
    energies_x, energies_y = model.patch_energies(x), model.patch_energies(y)
    assert not torch.allclose(energies_x, energies_y)
    assert not torch.allclose(energies_x[:, 0], energies_y[:, 0])  # attention mixes patches


def test_dit_predicts_noise_shaped_output_and_needs_t():
    model = perturbed(DiT(**TINY))
    x = torch.randn(2, 3, 16, 16)
    out = model(x, torch.tensor([3, 50]))
    assert out.shape == x.shape
    assert not torch.allclose(out, model(x, torch.tensor([4, 60])))
    assert model.forward_features(x, t=0).shape == (2, 16, 16)
    with pytest.raises(ValueError, match='timestep'):
        model.forward_features(x)


def test_dit_unpatchify_inverts_patchify():
    model = DiT(**TINY)
    x = torch.randn(2, 3, 16, 16)
    p = 4
    tokens = x.reshape(2, 3, 4, p, 4, p).permute(0, 2, 4, 3, 5, 1).reshape(2, 16, p * p * 3)
    torch.testing.assert_close(model.unpatchify(tokens), x)


def test_paper_sizes():
    assert resolve_arch('large') == dict(depth=24, num_heads=16, embed_dims=1536)
    assert resolve_arch('xs') == dict(depth=12, num_heads=6, embed_dims=384)
    assert list(ARCH_SETTINGS) == ['4xs', '3xs', 'xxs', 'xs', 'small', 'medium', 'large', 'xl']
    with pytest.raises(KeyError, match='unknown arch'):
        resolve_arch('huge')
    with pytest.raises(ValueError, match='divisible'):
        BidirectionalEBT(arch='xs', img_size=30, patch_size=8)


def test_sincos_position_embedding():
    table = sincos_2d_position_embedding(16, 4)
    assert table.shape == (16, 16)
    assert table.abs().max() <= 1
    assert torch.unique(table, dim=0).shape[0] == 16  # every position distinct
    # the first quarter encodes the column: equal across rows of the grid
    torch.testing.assert_close(table[0, :4], table[4, :4])


def test_wrong_input_size_is_reported():
    with pytest.raises(ValueError, match='16x16'):
        BidirectionalEBT(**TINY)(torch.randn(1, 3, 8, 8))
