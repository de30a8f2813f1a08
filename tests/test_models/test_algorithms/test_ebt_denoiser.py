"""EBT denoiser as an MMEngine model: training through thinking, prediction, System 2."""
import pytest
import torch
from conftest import TINY_IMAGE_BACKBONE as BACKBONE
from conftest import denoise_samples as samples

from ebtvision.models import EBTDenoiser


def make_ebt(**kwargs):
    torch.manual_seed(0)
    return EBTDenoiser(backbone=dict(type='BidirectionalEBT', **BACKBONE),
                       thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=2.0), **kwargs)


@pytest.mark.parametrize('loss_type', ['smooth_l1', 'mse'])
def test_ebt_loss_trains_backbone_and_alpha(loss_type):
    model = make_ebt(loss_type=loss_type)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    losses = model(x, samples(4), mode='loss')
    assert set(losses) >= {'loss', 'final_step_mse', 'noisy_mse', 'alpha', 'energy_drop'}
    losses['loss'].backward()
    assert model.thinker.alpha.grad is not None
    assert model.backbone.final_layer.linear.weight.grad.abs().sum() > 0


def test_ebt_training_lowers_the_loss():
    model = make_ebt()
    model.thinker.alpha.data.fill_(20.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    first = None
    for _ in range(30):
        torch.manual_seed(1)  # same noise each step: a fixed regression problem
        loss = model(x, mode='loss')['loss']
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first


def test_predict_is_deterministic_and_fills_samples():
    model = make_ebt(eval_noise_levels=[0.1, 0.3]).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        first = model(x, samples(2), mode='predict')
        second = model(x, samples(2), mode='predict')
    assert set(first[0].pred_imgs) == {'0.1', '0.3'}
    for key in ('0.1', '0.3'):
        torch.testing.assert_close(first[1].noisy_imgs[key], second[1].noisy_imgs[key])
        torch.testing.assert_close(first[1].pred_imgs[key], second[1].pred_imgs[key])
        assert first[0].energies[key].shape == (3, )  # 2 steps + the final candidate
    # noisier level, larger error of the noisy input
    err = {k: (first[0].noisy_imgs[k] - x[0]).pow(2).mean() for k in ('0.1', '0.3')}
    assert err['0.3'] > err['0.1']
    # different samples get different noise
    assert not torch.allclose(first[0].noisy_imgs['0.1'] - x[0], first[1].noisy_imgs['0.1'] - x[1])


def test_thinking_longer_at_test_time():
    model = make_ebt(test_cfg=dict(num_steps=5)).eval()
    trajectory = model.think(torch.zeros(1, 3, 16, 16))
    assert len(trajectory.candidates) == 5


def test_tensor_mode_and_unknown_mode():
    model = make_ebt().eval()
    noisy = torch.rand(2, 3, 16, 16)
    assert model(noisy, mode='tensor').shape == noisy.shape
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(noisy, mode='features')


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match='loss_type'):
        make_ebt(loss_type='l3')
    with pytest.raises(ValueError, match='noise_level'):
        make_ebt(eval_noise_levels=[1.5])


def sloped_ebt(**kwargs):
    """A tiny EBT whose energy is not flat (adaLN-Zero starts flat)."""
    model = make_ebt(**kwargs)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.2 * torch.randn_like(param))
    return model.eval()


def test_self_verification_never_raises_the_energy():
    model = sloped_ebt()
    noisy = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    single = model.denoise_by_thinking(noisy, num_steps=2)
    verified = model.denoise_by_thinking(noisy, num_steps=2, num_candidates=4,
                                    generator=torch.Generator().manual_seed(0))
    assert (verified.energies[:, -1] <= single.energies[:, -1] + 1e-6).all()
    assert (verified.energies[:, -1] < single.energies[:, -1] - 1e-6).any()
    # The kept candidate is the lowest of the four, and candidate 0 is the plain run.
    torch.testing.assert_close(verified.energies[:, -1], verified.candidate_energies.min(1)[0])
    torch.testing.assert_close(verified.candidate_energies[:, 0], single.energies[:, -1])
    kept = verified.chosen == 0
    torch.testing.assert_close(verified.final[kept], single.final[kept])
    assert len(verified.trajectory) == 3
    torch.testing.assert_close(verified.trajectory[0], noisy)


def test_predict_reports_energy_maps_steps_and_candidates():
    model = sloped_ebt(eval_noise_levels=[0.1],
                       test_cfg=dict(num_candidates=3, tolerance=1e-2, num_steps=6))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        first = model(x, samples(2), mode='predict')
        again = model(x, samples(2), mode='predict')
    sample = first[1]
    assert sample.energy_maps['0.1'].shape == (2, 2)  # 16 px / 8 px patches
    # The map's mean is the image's energy (energy = mean over patches).
    torch.testing.assert_close(sample.energy_maps['0.1'].mean(), sample.energies['0.1'][-1])
    assert 1 <= int(sample.steps_used['0.1']) <= 6
    torch.testing.assert_close(first[0].pred_imgs['0.1'], again[0].pred_imgs['0.1'])


def test_replay_buffer_restarts_part_of_the_batch_from_past_predictions():
    model = make_ebt(replay_buffer=dict(type='ReplayBuffer', capacity=8, replay_fraction=0.5,
                                        seed=0, mode='replace')).train()
    first = torch.rand(4, 3, 16, 16) * 2 - 1
    logs = model.loss(first)
    assert float(logs['replayed']) == 0 and len(model.replay_buffer) == 4
    stored_targets = model.replay_buffer.storage['target'].clone()
    torch.testing.assert_close(stored_targets, first)
    second = torch.rand(4, 3, 16, 16) * 2 - 1
    logs = model.loss(second)
    assert float(logs['replayed']) == 2 and len(model.replay_buffer) == 8
    # The pushed batch is the mixed one: 2 new images, then 2 replayed from the first batch.
    newest = model.replay_buffer.storage['target'][4:]
    torch.testing.assert_close(newest[:2], second[:2])
    assert all(any(torch.equal(img, old) for old in first) for img in newest[2:])
    logs['loss'].backward()
    assert model.backbone.learned_condition.grad is not None
