"""DiT backbone: noise-shaped output conditioned on the timestep, unpatchify."""
import pytest
import torch
from conftest import TINY_PATCH4_BACKBONE as TINY
from conftest import perturbed

from ebtvision.models import DiT


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
