"""Next-frame EBT and Transformer++: losses, masking, thinking, self-verification, rollout."""
import pytest
import torch
import torch.nn.functional as F

from ebtvision.models import EBTNextFrame, NextFrameHead, TransformerPPNextFrame
from ebtvision.structures import VideoDataSample

ARCH = dict(depth=1, num_heads=2, embed_dims=16)
LATENT = (3, 2, 2)


def ebt(**kwargs):
    torch.manual_seed(0)
    options = dict(
        backbone=dict(type='CausalEBT', arch=ARCH, max_steps=2), head=dict(type='NextFrameHead'),
        latent_shape=LATENT, thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=0.5,
                                          random_step_size_scale=2.0, random_step_size_dims=2))
    options.update(kwargs)
    return EBTNextFrame(**options)


def transformer_pp():
    torch.manual_seed(0)
    return TransformerPPNextFrame(backbone=dict(type='CausalTransformer', arch=ARCH),
                                  head=dict(type='NextFrameHead'), latent_shape=LATENT)


def samples(count, padded=()):
    padded = list(padded) + [0] * (count - len(padded))
    return [VideoDataSample(metainfo=dict(input_kind='latents', sample_idx=i, num_padded=p))
            for i, p in enumerate(padded)]


def clips(batch=2, length=5, seed=1):
    return torch.randn(batch, length, *LATENT, generator=torch.Generator().manual_seed(seed))


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


def test_transformer_pp_loss_is_the_masked_smooth_l1_of_its_predictions():
    model = transformer_pp()
    latents = clips()
    data = samples(2, padded=[2])
    loss = model(latents, data, mode='loss')
    pred = model.predict_next_latents(latents[:, :-1])[0]
    errors = F.smooth_l1_loss(pred, latents[:, 1:], reduction='none').flatten(2).mean(-1)
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[0, 2:] = False  # two padded frames at the end of clip 0
    torch.testing.assert_close(loss['loss'], errors[mask].mean())
    # Changing a padded target changes nothing.
    changed = latents.clone()
    changed[0, -1] += 5
    torch.testing.assert_close(model(changed, data, mode='loss')['loss'], loss['loss'])
    with pytest.raises(TypeError, match='CausalTransformer'):
        TransformerPPNextFrame(backbone=dict(type='CausalEBT', arch=ARCH),
                               head=dict(type='NextFrameHead'), latent_shape=LATENT)


def test_ebt_loss_backpropagates_through_thinking_into_every_part():
    model = ebt()
    with torch.no_grad():
        model.backbone.step_embed.weight.normal_()
    losses = model(clips(), samples(2), mode='loss')
    assert {'loss', 'final_smooth_l1', 'copy_last_smooth_l1', 'alpha', 'energy_drop'} <= set(losses)
    losses['loss'].backward()
    for name in ('head.embed.weight', 'backbone.energy_head.weight', 'thinker.alpha',
                 'backbone.step_embed.weight', 'backbone.blocks.0.qkv.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_ebt_learns_a_fixed_batch():
    model = ebt(thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=1.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    latents, data = clips(batch=4), samples(4)
    first = None
    for _ in range(40):
        loss = model(latents, data, mode='loss')['loss']
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.75 * first


def test_ebt_replay_buffer_fills_and_replays():
    model = ebt(replay_buffer=dict(type='ReplayBuffer', capacity=4, replay_fraction=0.5))
    assert model(clips(), samples(2), mode='loss')['replayed'] == 0
    assert len(model.replay_buffer) == 2
    assert model(clips(seed=2), samples(2), mode='loss')['replayed'] == 1


def test_ebt_predict_is_deterministic_and_fills_the_data_samples():
    model = ebt().eval()
    latents = clips()
    with torch.no_grad():
        first = model(latents, samples(2), mode='predict')
        second = model(latents, samples(2), mode='predict')
    sample = first[0]
    assert sample.pred_latents.shape == (4, *LATENT) and sample.gt_latents.shape == (5, *LATENT)
    assert sample.energies.shape == (4, ) and sample.energy_trajectory.shape == (3, 4)
    torch.testing.assert_close(sample.energy_trajectory[-1], sample.energies)
    torch.testing.assert_close(second[0].pred_latents, sample.pred_latents)
    assert 'pred_frames' not in sample  # no encoder, nothing to decode


def test_self_verification_never_raises_the_energy():
    model = ebt().eval()
    real = clips()[:, :-1]
    one = model.predict_next_latents(real, samples(2), num_candidates=1)
    four = model.predict_next_latents(real, samples(2), num_candidates=4)
    assert (four[1] <= one[1] + 1e-6).all() and (four[1] < one[1] - 1e-6).any()


def test_thinking_longer_reuses_the_last_trained_landscape():
    model = ebt().eval()
    pred, energies, trajectory = model.predict_next_latents(clips()[:, :-1], num_steps=5)[:3]
    assert trajectory.shape == (6, 2, 4)
    # The energy falls along the trajectory on average for a small enough step.
    small = model.predict_next_latents(clips()[:, :-1], num_steps=5, alpha=0.01)[2]
    assert small[-1].mean() < small[0].mean()


def test_rollout_predicts_autoregressively():
    for model in (ebt().eval(), transformer_pp().eval()):
        context = clips()[:, :3]
        frames, energies = model.rollout(context, 3)
        assert frames.shape == (2, 3, *LATENT)
        first = model.predict_next_latents(context, seed_offset=0)[0][:, -1]
        torch.testing.assert_close(frames[:, 0], first)
        second = model.predict_next_latents(torch.cat([context, frames[:, :1]], 1),
                                            seed_offset=1)[0][:, -1]
        torch.testing.assert_close(frames[:, 1], second)
        assert (energies is None) == isinstance(model, TransformerPPNextFrame)


def test_cached_rollout_matches_rereading_the_sequence():
    for model, options in ((ebt().eval(), dict(num_candidates=2, num_steps=3)),
                           (ebt(head=dict(type='NextFrameHead', initial_candidate='last_frame'),
                                test_cfg=dict(candidate_noise=0.2)).eval(),
                            dict(num_candidates=3)),
                           (transformer_pp().eval(), {})):
        context = clips()[:, :3]
        frames, energies = model.rollout(context, 4, **options)
        frames_full, energies_full = model.rollout(context, 4, use_cache=False, **options)
        torch.testing.assert_close(frames, frames_full, rtol=1e-4, atol=1e-4)
        if energies is not None:
            torch.testing.assert_close(energies, energies_full, rtol=1e-4, atol=1e-4)


def test_input_checks():
    model = transformer_pp()
    mixed = samples(2)
    mixed[1].set_metainfo(dict(input_kind='pixels'))
    with pytest.raises(ValueError, match='mixes input kinds'):
        model(clips(), mixed, mode='loss')
    with pytest.raises(RuntimeError, match='need an encoder'):
        model(torch.zeros(2, 5, 3, 8, 8), None, mode='loss')
    with pytest.raises(ValueError, match='latent_shape'):
        TransformerPPNextFrame(backbone=dict(type='CausalTransformer', arch=ARCH),
                               head=dict(type='NextFrameHead'))
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(clips(), samples(2), mode='nope')


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


def test_adaptive_stopping_for_video():
    model = ebt().eval()
    real = clips()[:, :-1]
    fixed = model.predict_next_latents(real, samples(2), num_steps=4)
    loose = model.predict_next_latents(real, samples(2), num_steps=4, tolerance=10.0)
    tight = model.predict_next_latents(real, samples(2), num_steps=4, tolerance=1e-12)
    assert fixed.steps_used is None
    assert loose.steps_used.tolist() == [1.0, 1.0]  # every clip stops after its first step
    assert tight.steps_used.tolist() == [4.0, 4.0]
    torch.testing.assert_close(tight.latents, fixed.latents)
    predicted = model.predict(torch.cat([real, clips()[:, -1:]], 1), samples(2))
    assert not hasattr(predicted[0], 'steps_used')
    model.test_cfg['tolerance'] = 10.0
    predicted = model.predict(torch.cat([real, clips()[:, -1:]], 1), samples(2))
    assert float(predicted[0].steps_used) == 1.0


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
