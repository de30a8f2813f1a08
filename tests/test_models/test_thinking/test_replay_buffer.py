"""Replay buffer (System 2 of models/thinking): mixing, capacity, checkpoints."""
import pytest
import torch
from conftest import TINY_IMAGE_BACKBONE

from ebtvision.models import EBTDenoiser, ReplayBuffer
from ebtvision.models.thinking.energy_minimizer import trajectory_loss


def batch(start, size=4):
    ids = torch.arange(start, start + size, dtype=torch.float32)
    return dict(real=ids[:, None].repeat(1, 3), target=ids[:, None] * 10)


def test_empty_buffer_leaves_the_batch_alone():
    buffer = ReplayBuffer(capacity=8)
    data, init = batch(0), torch.zeros(4, 2)
    mixed, mixed_init, count = buffer.mix(data, init)
    assert count == 0 and mixed is data and mixed_init is init


def test_mix_replaces_a_fraction_with_buffered_samples_and_their_predictions():
    buffer = ReplayBuffer(capacity=8, replay_fraction=0.5, seed=1, mode='replace')
    first = batch(100)
    buffer.push(first, prediction=first['target'] + 0.5)
    data, init = batch(0), torch.zeros(4, 1)
    mixed, mixed_init, count = buffer.mix(data, init)
    assert count == 2
    assert torch.equal(mixed['real'][:2], data['real'][:2])  # the rest of the batch is kept
    ids = mixed['real'][2:, 0]
    assert set(ids.tolist()) <= set(range(100, 104))
    # Each replayed sample keeps its own target and starts from its own prediction.
    torch.testing.assert_close(mixed['target'][2:, 0], ids * 10)
    torch.testing.assert_close(mixed_init[2:, 0], ids * 10 + 0.5)
    torch.testing.assert_close(mixed_init[:2], init[:2])


def test_capacity_keeps_the_newest_and_detaches():
    buffer = ReplayBuffer(capacity=6)
    for start in (0, 10, 20):
        data = batch(start)
        prediction = torch.ones(4, 1, requires_grad=True) * start
        buffer.push(data, prediction)
    assert len(buffer) == 6
    assert buffer.storage['real'][:, 0].tolist() == [12, 13, 20, 21, 22, 23]
    assert not buffer.storage['prediction'].requires_grad


def test_shape_change_restarts_the_buffer_and_bad_options_fail():
    buffer = ReplayBuffer(capacity=8)
    buffer.push(batch(0), torch.zeros(4, 1))
    other = dict(real=torch.zeros(2, 5), target=torch.zeros(2, 1))
    assert buffer.mix(other, torch.zeros(2, 1))[2] == 0  # nothing of that shape buffered
    buffer.push(other, torch.zeros(2, 1))
    assert len(buffer) == 2
    with pytest.raises(KeyError):
        buffer.push(dict(real=torch.zeros(2, 5)), torch.zeros(2, 1))
    with pytest.raises(ValueError):
        ReplayBuffer(capacity=0)
    with pytest.raises(ValueError):
        ReplayBuffer(replay_fraction=1.5)


def test_buffer_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    module = torch.nn.Module()
    module.replay_buffer = ReplayBuffer(capacity=6, seed=3)
    for start in (0, 10):
        module.replay_buffer.push(batch(start), torch.ones(4, 1) * start)
    module.replay_buffer.mix(batch(50), torch.zeros(4, 1))  # advance the generator
    path = tmp_path / 'buffer.pth'
    torch.save(module.state_dict(), path)
    restored = torch.nn.Module()
    restored.replay_buffer = ReplayBuffer(capacity=6)
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert len(restored.replay_buffer) == 6
    for key, value in module.replay_buffer.storage.items():
        assert torch.equal(restored.replay_buffer.storage[key], value)
    # Both draw the same buffered samples next.
    expected = module.replay_buffer.mix(batch(60), torch.zeros(4, 1))[0]['real']
    assert torch.equal(restored.replay_buffer.mix(batch(60), torch.zeros(4, 1))[0]['real'],
                       expected)


def test_buffer_left_out_of_checkpoints_and_bad_state():
    buffer = ReplayBuffer(capacity=4, save_in_checkpoint=False)
    buffer.push(batch(0), torch.zeros(4, 1))
    assert buffer.get_extra_state() == {}
    fresh = ReplayBuffer(capacity=4)
    fresh.set_extra_state({})  # a checkpoint saved without the buffer
    assert len(fresh) == 0
    with pytest.raises(ValueError, match='inconsistent'):
        fresh.set_extra_state(dict(storage=dict(real=torch.zeros(3, 2),
                                                prediction=torch.zeros(2, 1)),
                                   generator=torch.Generator().get_state()))
    assert 'capacity=4' in repr(buffer) and 'size=4' in repr(buffer)


def test_append_mode_adds_replayed_rows_after_the_fresh_batch():
    buffer = ReplayBuffer(capacity=8, replay_fraction=0.5, seed=1)  # 'append' by default
    assert buffer.mode == 'append' and 'mode=append' in repr(buffer)
    first = batch(100)
    buffer.push(first, prediction=first['target'] + 0.5)
    data, init = batch(0), torch.randn(4, 1)
    mixed, mixed_init, count = buffer.mix(data, init)
    assert count == 2 and mixed_init.shape == (6, 1)
    for key, value in data.items():  # the whole fresh batch first, untouched
        assert mixed[key].shape[0] == 6 and torch.equal(mixed[key][:4], value)
    assert torch.equal(mixed_init[:4], init)
    ids = mixed['real'][4:, 0]
    assert len(set(ids.tolist())) == 2 and set(ids.tolist()) <= set(range(100, 104))
    # Each replayed sample keeps its own target and starts from its own stored prediction.
    torch.testing.assert_close(mixed['target'][4:, 0], ids * 10)
    torch.testing.assert_close(mixed_init[4:, 0], ids * 10 + 0.5)
    # Only the fresh rows are pushed, with their predictions.
    buffer.push(mixed, mixed_init + 1, num_fresh=4)
    assert len(buffer) == 8
    assert buffer.storage['real'][:, 0].tolist() == [100, 101, 102, 103, 0, 1, 2, 3]
    torch.testing.assert_close(buffer.storage['prediction'][4:], init + 1)


def test_append_mode_count_is_capped_by_the_buffer_and_empty_buffer_gives_fresh_only():
    buffer = ReplayBuffer(capacity=3, replay_fraction=1.0, seed=0)
    data, init = batch(0, size=5), torch.zeros(5, 1)
    mixed, mixed_init, count = buffer.mix(data, init)
    assert count == 0 and mixed is data and mixed_init is init
    buffer.push(mixed, init, num_fresh=5)
    assert len(buffer) == 3  # the newest three of the five
    mixed, mixed_init, count = buffer.mix(batch(10, size=5), torch.zeros(5, 1))
    assert count == 3 and mixed['real'].shape[0] == 8 and mixed_init.shape[0] == 8
    assert sorted(mixed['real'][5:, 0].tolist()) == [2, 3, 4]
    # The reference's int(fraction * batch): 0.5 of 5 samples replays 2.
    half = ReplayBuffer(capacity=8, replay_fraction=0.5)
    half.push(batch(0, size=8), torch.zeros(8, 1))
    assert half.mix(batch(10, size=5), torch.zeros(5, 1))[2] == 2
    replace = ReplayBuffer(capacity=8, replay_fraction=0.5, mode='replace')
    replace.push(batch(0, size=8), torch.zeros(8, 1))
    assert replace.mix(batch(10, size=5), torch.zeros(5, 1))[2] == 2  # round(2.5) == 2
    with pytest.raises(ValueError, match='mode'):
        ReplayBuffer(mode='prepend')


def test_replace_mode_pushes_every_row_even_with_num_fresh():
    buffer = ReplayBuffer(capacity=8, replay_fraction=0.5, seed=1, mode='replace')
    buffer.push(batch(100), torch.zeros(4, 1))
    mixed, init, count = buffer.mix(batch(0), torch.zeros(4, 1))
    assert count == 2 and mixed['real'].shape[0] == 4
    buffer.push(mixed, init, num_fresh=4)
    assert torch.equal(buffer.storage['real'][4:], mixed['real'])


def test_append_mode_training_step_of_a_tiny_ebt():
    torch.manual_seed(0)
    model = EBTDenoiser(backbone=dict(type='BidirectionalEBT', **TINY_IMAGE_BACKBONE),
                        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=2.0),
                        replay_buffer=dict(type='ReplayBuffer', capacity=8,
                                           replay_fraction=0.5, seed=0)).train()
    seen = {}
    model.thinker.register_forward_hook(
        lambda module, args, output: seen.update(init=args[1].detach(), trajectory=output))
    first = torch.rand(4, 3, 16, 16) * 2 - 1
    logs = model.loss(first)
    assert float(logs['replayed']) == 0 and seen['init'].shape[0] == 4
    stored = {key: value.clone() for key, value in model.replay_buffer.storage.items()}
    torch.testing.assert_close(stored['target'], first)
    torch.testing.assert_close(stored['prediction'], seen['trajectory'].final.detach())

    second = torch.rand(4, 3, 16, 16) * 2 - 1
    logs = model.loss(second)
    assert float(logs['replayed']) == 2
    init, trajectory = seen['init'], seen['trajectory']
    assert init.shape[0] == 6 and trajectory.final.shape[0] == 6
    # Replayed rows start from stored final predictions; find which samples they are.
    picks = [next(j for j in range(4) if torch.equal(row, stored['prediction'][j]))
             for row in init[4:]]
    assert len(set(picks)) == 2
    # The loss covers all 4 + 2 rows against their own targets.
    targets = torch.cat([second, stored['target'][picks]])
    torch.testing.assert_close(logs['loss'], trajectory_loss(trajectory, targets, model.loss_fn,
                                                             model.thinker.truncate))
    # Only the 4 fresh images and their final predictions were pushed.
    assert len(model.replay_buffer) == 8
    torch.testing.assert_close(model.replay_buffer.storage['target'][:4], first)
    torch.testing.assert_close(model.replay_buffer.storage['target'][4:], second)
    torch.testing.assert_close(model.replay_buffer.storage['prediction'][4:],
                               trajectory.final[:4].detach())
    logs['loss'].backward()
    assert model.backbone.final_layer.linear.weight.grad.abs().sum() > 0
