"""Next-frame EBT: loss through thinking, replay, prediction, self-verification, thinking
longer and adaptive stopping."""
import torch
from conftest import NEXT_FRAME_LATENT as LATENT
from conftest import latent_clips as clips
from conftest import video_ebt as ebt
from conftest import video_samples as samples


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


def test_embedding_space_langevin_noise_has_the_width_of_the_model():
    model = ebt(backbone=dict(type='CausalEBT', arch=dict(depth=1, num_heads=2, embed_dims=16),
                              max_steps=1, step_condition='token'),
                thinker=dict(type='EnergyMinimizer', num_steps=1, alpha=0.5, langevin_sigma=1.0,
                             langevin_space='embedding'))
    shapes = []
    noise = model.thinker.langevin_noise
    model.thinker.langevin_noise = lambda embedded: shapes.append(embedded.shape) or noise(
        embedded)
    model(clips(), samples(2), mode='loss')['loss'].backward()
    assert shapes == [(2, 4, 16)]  # (B, T, width), not the (3, 2, 2) latent
