"""Replay buffer (System 2 of models/thinking): mixing, capacity, checkpoints."""
import pytest
import torch

from ebtvision.models import ReplayBuffer


def batch(start, size=4):
    ids = torch.arange(start, start + size, dtype=torch.float32)
    return dict(real=ids[:, None].repeat(1, 3), target=ids[:, None] * 10)


def test_empty_buffer_leaves_the_batch_alone():
    buffer = ReplayBuffer(capacity=8)
    data, init = batch(0), torch.zeros(4, 2)
    mixed, mixed_init, count = buffer.mix(data, init)
    assert count == 0 and mixed is data and mixed_init is init


def test_mix_replaces_a_fraction_with_buffered_samples_and_their_predictions():
    buffer = ReplayBuffer(capacity=8, replay_fraction=0.5, seed=1)
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
