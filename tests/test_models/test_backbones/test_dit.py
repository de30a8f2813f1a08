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


def test_dit_with_learned_sigma_outputs_twice_the_channels():
    model = perturbed(DiT(learn_sigma=True, **TINY))
    assert (model.out_channels, model.final_layer.linear.out_features) == (6, 4 * 4 * 6)
    x = torch.randn(2, 3, 16, 16)
    out = model(x, torch.tensor([3, 50]))
    assert out.shape == (2, 6, 16, 16)
    # each patch's p*p*6 outputs go to its own pixels, channels last in the token
    tokens = torch.arange(16 * 96.).reshape(1, 16, 96)
    image = model.unpatchify(tokens)
    assert image[0, 5, 0, 0] == 5 and image[0, 0, 0, 1] == 6 and image[0, 0, 0, 4] == 96


def test_dit_initialisation_and_learn_sigma_check():
    torch.manual_seed(0)
    model = DiT(arch=dict(depth=1, num_heads=2, embed_dims=64), img_size=16, patch_size=4)
    for layer in (model.t_embedder.mlp[0], model.t_embedder.mlp[2]):
        assert not layer.bias.any() and 0.015 < layer.weight.std() < 0.025
    assert not model.final_layer.linear.weight.any()  # adaLN-Zero: starts at zero output
    with pytest.raises(TypeError, match='learn_sigma'):
        DiT(learn_sigma='yes', **TINY)


def test_dit_trains_on_plain_modules_and_the_ebt_on_the_fused_block(monkeypatch):
    """The hand-derived fused block pays off only for second-order training (the EBT);
    the DiT's first-order training runs the plain modules (PyTorch's fused attention)."""
    from ebtvision.models import BidirectionalEBT
    from ebtvision.models.layers import adaln
    calls = []
    real = adaln.fused_adaln_block
    monkeypatch.setattr(adaln, 'fused_adaln_block',
                        lambda *args: calls.append(1) or real(*args))
    small = dict(arch=dict(depth=1, num_heads=2, embed_dims=16), img_size=8, patch_size=4)
    x = torch.randn(2, 3, 8, 8)
    dit = DiT(**small)
    dit(x, torch.zeros(2, dtype=torch.long)).sum().backward()
    assert not dit.fused and calls == []
    assert DiT(fused=True, **small).fused
    ebt = BidirectionalEBT(**small)
    ebt(x).sum().backward()
    assert ebt.fused and calls == [1]
    assert not BidirectionalEBT(fused=False, **small).blocks[0].fused
