"""NextFrameHead: latent embedding, masked loss, the visible part of candidate noise."""
import pytest
import torch
import torch.nn.functional as F
from conftest import NEXT_FRAME_LATENT as LATENT
from conftest import latent_clips as clips
from conftest import video_ebt as ebt

from ebtvision.models import NextFrameHead


def test_head_shapes_and_masked_loss():
    head = NextFrameHead(LATENT, embed_dims=8, predict_latents=True)
    latents = clips()
    assert head.embed_latents(latents).shape == (2, 5, 8)
    assert head.predict(torch.zeros(2, 5, 8)).shape == (2, 5, *LATENT)
    pred, target = latents, torch.zeros_like(latents)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    per_frame = F.smooth_l1_loss(pred, target, reduction='none').flatten(2).mean(-1)
    torch.testing.assert_close(head.loss(pred, target, mask), per_frame[mask].mean())
    with pytest.raises(ValueError, match='latents of shape'):
        head.check_latents(torch.zeros(1, 2, 4, 2, 2))
    with pytest.raises(RuntimeError):
        NextFrameHead(LATENT, embed_dims=8).predict(torch.zeros(1, 1, 8))


def test_candidate_noise_stays_where_the_energy_can_see_it():
    model = ebt(head=dict(type='NextFrameHead', initial_candidate='last_frame')).eval()
    noise = torch.randn(2, 4, *LATENT)
    visible = model.head.visible_part(noise)
    weight = model.head.embed.weight
    # Same embedding as the full noise, and projecting twice changes nothing.
    torch.testing.assert_close(visible.flatten(2) @ weight.t(), noise.flatten(2) @ weight.t())
    torch.testing.assert_close(model.head.visible_part(visible), visible)
    start = model.head.init_candidates(clips()[:, :-1], torch.Generator().manual_seed(0),
                                       noise_std=0.1)
    offset = start - clips()[:, :-1]
    torch.testing.assert_close(model.head.visible_part(offset), offset)


def test_visible_part_basis_follows_the_weight():
    head = NextFrameHead(LATENT, embed_dims=4)
    latents = torch.randn(1, 2, *LATENT)
    first = head.visible_part(latents)
    assert torch.equal(head.visible_part(latents), first)  # the cached basis
    with torch.no_grad():
        head.embed.weight.normal_()  # an optimizer step changes the weight in place
    changed = head.visible_part(latents)
    fresh = NextFrameHead(LATENT, embed_dims=4)
    fresh.load_state_dict(head.state_dict())
    torch.testing.assert_close(changed, fresh.visible_part(latents))
    assert not torch.allclose(changed, first)


def test_output_linear_comes_before_the_latent_projection():
    torch.manual_seed(0)
    head = NextFrameHead(LATENT, embed_dims=8, predict_latents=True, output_linear=True)
    assert head.output_linear.bias is None
    features = torch.randn(2, 5, 8)
    expected = head.predictor(features @ head.output_linear.weight.t()).unflatten(-1, LATENT)
    torch.testing.assert_close(head.predict(features), expected)
    with pytest.raises(ValueError, match='predict_latents'):
        NextFrameHead(LATENT, embed_dims=8, output_linear=True)


def test_xavier_init_of_the_head():
    torch.manual_seed(0)
    head = NextFrameHead((4, 16, 16), embed_dims=64, predict_latents=True, output_linear=True,
                         weight_init='xavier')
    assert not head.embed.bias.any() and not head.predictor.bias.any()
    std = (2 / (1024 + 64))**0.5
    assert abs(head.embed.weight.std().item() / std - 1) < 0.05
    assert abs(head.output_linear.weight.std().item() / (1 / 8) - 1) < 0.05
    with pytest.raises(ValueError, match='weight_init'):
        NextFrameHead(LATENT, embed_dims=8, weight_init='he')
