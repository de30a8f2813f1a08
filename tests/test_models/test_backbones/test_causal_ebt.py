"""Causal EBT: attention pattern, no leakage, step embedding, second-order gradients, cache."""
import pytest
import torch
from conftest import TWO_BLOCK_CAUSAL_ARCH as ARCH

from ebtvision.models import CausalEBT, CausalTransformer, candidate_attention_mask
from ebtvision.models.layers import KVCache


def model(**kwargs):
    torch.manual_seed(0)
    net = CausalEBT(arch=ARCH, **kwargs)
    with torch.no_grad():  # the step embedding starts at zero; make it matter
        if net.step_embed is not None:
            net.step_embed.weight.normal_(std=0.5)
    return net


def test_mask_pattern():
    mask = candidate_attention_mask(3).int()
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 0, 0, 1, 0, 0],  # candidate 0 (predicts frame 1): real 0 and itself
        [1, 1, 0, 0, 1, 0],
        [1, 1, 1, 0, 0, 1],
    ])
    assert torch.equal(mask, expected)


def test_energies_per_candidate():
    net = model()
    real, cand = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    assert net(real, cand).shape == (2, 5)
    assert net.forward_features(real, cand).shape == (2, 5, 16)


@pytest.mark.parametrize('frame', [0, 2, 3])
def test_no_leakage_from_future_real_frames_or_other_candidates(frame):
    net = model()
    real, cand = torch.randn(1, 5, 16), torch.randn(1, 5, 16)
    base = net(real, cand)
    future = real.clone()
    future[:, frame + 1] += 3.0  # the frame candidate `frame` predicts
    changed = net(future, cand)
    torch.testing.assert_close(changed[:, :frame + 1], base[:, :frame + 1])
    assert not torch.allclose(changed[:, frame + 1:], base[:, frame + 1:])
    other = cand.clone()
    other[:, (frame + 1) % 5] += 3.0  # another candidate
    changed = net(real, other)
    keep = [i for i in range(5) if i != (frame + 1) % 5]
    torch.testing.assert_close(changed[:, keep], base[:, keep])


def test_candidate_sees_its_context():
    net = model()
    real, cand = torch.randn(1, 4, 16), torch.randn(1, 4, 16)
    earlier = real.clone()
    earlier[:, 1] += 1.0
    assert not torch.allclose(net(earlier, cand)[:, 1:], net(real, cand)[:, 1:])


def test_step_embedding_changes_energies_and_is_bounded():
    net = model(max_steps=3)
    real, cand = torch.randn(1, 4, 16), torch.randn(1, 4, 16)
    assert not torch.allclose(net(real, cand, step=0), net(real, cand, step=2))
    with pytest.raises(ValueError, match='max_steps'):
        net(real, cand, step=3)


def test_second_order_gradients():
    net = model().double()
    real = torch.randn(1, 3, 16, dtype=torch.double)
    cand = torch.randn(1, 3, 16, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda c: net(real, c), (cand, ), eps=1e-6, atol=1e-5)


def test_thinking_loop_scores_frames_with_step_embeddings():
    from ebtvision.models import EnergyMinimizer
    net = model(max_steps=2)
    real = torch.randn(2, 4, 16)
    thinker = EnergyMinimizer(num_steps=2, alpha=0.05, random_step_size_scale=2.0,
                              random_step_size_dims=2).train()
    trajectory = thinker(lambda c, step: net(real, c, step=step), torch.randn(2, 4, 16),
                         score_final=True)
    assert trajectory.landscapes == [0, 1]
    assert trajectory.energies[0].shape == (2, 4) and trajectory.final.shape == (2, 4, 16)
    loss = trajectory.final.pow(2).mean()
    loss.backward()  # second order through the causal backbone
    assert net.step_embed.weight.grad[1].abs().sum() > 0


def test_reading_in_pieces_with_a_cache_matches_one_pass():
    net = model()
    real = torch.randn(2, 6, 16)
    cache = KVCache()
    pieces = [net.extend(real[:, :3], cache), net.extend(real[:, 3:4], cache),
              net.extend(real[:, 4:], cache)]
    assert cache.length == 6 and cache.batch == 2
    # The real tokens of the EBT are a plain causal transformer pass.
    torch.testing.assert_close(torch.cat(pieces, 1), CausalTransformer.forward(net, real),
                               rtol=1e-5, atol=1e-5)
    assert all(not keys.requires_grad for keys, _ in cache.layers)


@pytest.mark.parametrize('step', [0, 1])
def test_cached_next_candidate_energy_is_the_last_column(step):
    net = model()
    real, cand = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    cache = KVCache()
    net.extend(real, cache)
    cached = net.next_candidate_energy(cache, cand[:, -1:], step)
    torch.testing.assert_close(cached, net(real, cand, step)[:, -1:], rtol=1e-5, atol=1e-5)
    # Candidates folded M x B see the repeated cache; a subset sees its own rows.
    folded = cache.repeat(3)
    many = torch.randn(6, 1, 16)
    energies = net.next_candidate_energy(folded, many, step)
    index = torch.tensor([4, 1])
    torch.testing.assert_close(net.next_candidate_energy(folded.select(index), many[index], step),
                               energies[index])
    # Folded row 3 is candidate 1 of sample 1 (rows are candidate-major).
    torch.testing.assert_close(energies[3:4], net(real[1:], torch.cat(
        [cand[1:, :-1], many[3:4]], 1), step)[:, -1:], rtol=1e-5, atol=1e-5)


def test_cache_errors_are_clear():
    net = model()
    with pytest.raises(ValueError, match='empty'):
        net.next_candidate_energy(KVCache(), torch.randn(1, 1, 16))
    cache = KVCache()
    net.extend(torch.randn(2, 3, 16), cache)
    with pytest.raises(ValueError, match='batch of 2'):
        net.extend(torch.randn(3, 1, 16), cache)
    with pytest.raises(ValueError, match='at least one'):
        net.extend(torch.randn(2, 0, 16), cache)
    energy_fn_for = net.folded_energy_fn(torch.randn(2, 3, 16), lambda r: r, lambda c: c, 2, 1,
                                         cache)
    assert energy_fn_for(None)(torch.randn(2, 1, 16), 0).shape == (2, 1)
    with pytest.raises(ValueError, match='another sequence'):
        net.folded_energy_fn(torch.randn(2, 2, 16), lambda r: r, lambda c: c, 2, 1, cache)
    with pytest.raises(ValueError, match='batch of 2'):
        net.folded_energy_fn(torch.randn(1, 3, 16), lambda r: r, lambda c: c, 2, 1, cache)
