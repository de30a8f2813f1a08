"""Bidirectional EBT backbone: shapes, energies, gradients."""
import pytest
import torch
from conftest import TINY_PATCH4_BACKBONE as TINY
from conftest import perturbed

from ebtvision.models import BidirectionalEBT


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


def test_wrong_input_size_is_reported():
    with pytest.raises(ValueError, match='16x16'):
        BidirectionalEBT(**TINY)(torch.randn(1, 3, 8, 8))
