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


def test_mask_pattern_with_a_step_token():
    mask = candidate_attention_mask(2, num_prefix=1).int()
    expected = torch.tensor([
        [1, 0, 0, 0, 0],  # the step token sees itself
        [1, 1, 0, 0, 0],  # real 0
        [1, 1, 1, 0, 0],
        [1, 1, 0, 1, 0],  # candidate 0: step, real 0, itself
        [1, 1, 1, 0, 1],
    ])
    assert torch.equal(mask, expected)


def token_model(**kwargs):
    torch.manual_seed(0)
    return CausalEBT(arch=ARCH, max_steps=2, step_condition='token', **kwargs).double()


@pytest.mark.parametrize('step', [0, 1])
def test_step_token_candidate_is_the_next_item_after_the_step_and_its_real_frames(step):
    # Candidate j is read like the item after [step token, real 0..j] in a plain causal
    # pass at positions 0..j+2 (the reference's time_embed layout).
    net = token_model()
    real, cand = torch.randn(2, 4, 16).double(), torch.randn(2, 4, 16).double()
    energies = net(real, cand, step)
    token = net.step_embed.weight[step].expand(2, 1, 16)
    for j in range(4):
        sequence = torch.cat([token, real[:, :j + 1], cand[:, j:j + 1]], 1)
        count = j + 3
        mask = torch.ones(count, count, dtype=torch.bool).tril()
        last = net.run_blocks(sequence, torch.arange(count), mask)[:, -1]
        torch.testing.assert_close(energies[:, j], net.energy_head(last).squeeze(-1))


def test_step_token_mode_reaches_real_frames_and_is_checked():
    net = token_model()
    assert net.step_embed.weight.abs().sum() > 0  # N(0, 1), as nn.Embedding: not zero
    real, cand = torch.randn(1, 3, 16).double(), torch.randn(1, 3, 16).double()
    assert not torch.allclose(net(real, cand, 0), net(real, cand, 1))
    with pytest.raises(ValueError, match='max_steps'):
        net(real, cand, 2)
    with pytest.raises(ValueError, match='step_condition'):
        CausalEBT(arch=ARCH, step_condition='concat')
    with pytest.raises(ValueError, match='max_steps >= 1'):
        CausalEBT(arch=ARCH, max_steps=0, step_condition='token')
    assert CausalEBT(arch=ARCH).step_condition == 'add'


def test_step_token_mode_rereads_instead_of_caching():
    net = token_model()
    real, cand = torch.randn(2, 5, 16).double(), torch.randn(2, 5, 16).double()
    cache = KVCache()
    with pytest.raises(ValueError, match="step_condition='token'"):
        net.extend(real, cache)
    with pytest.raises(ValueError, match="step_condition='token'"):
        net.next_candidate_energy(cache, cand[:, -1:])
    energy_fn_for = net.folded_energy_fn(real, lambda r: r, lambda c: c, 2, 3, cache)
    many = torch.randn(6, 1, 16).double()
    energies = energy_fn_for(None)(many, 1)
    assert cache.length == 0 and cache.batch is None  # nothing was cached
    # Folded row 3 is candidate 1 of sample 1: the last column of a full pass.
    torch.testing.assert_close(energies[3:4], net(real[1:], torch.cat(
        [cand[1:, :-1], many[3:4]], 1), 1)[:, -1:])
    index = torch.tensor([4, 1])
    torch.testing.assert_close(energy_fn_for(index)(many[index], 1), energies[index])


@pytest.mark.parametrize('condition', ['add', 'token'])
def test_energy_functions_apply_a_perturbation_to_the_embedded_candidates(condition):
    net = model(step_condition=condition).double()
    real, cand = torch.randn(2, 3, 16).double(), torch.randn(2, 3, 16).double()
    shift = torch.randn(2, 3, 16).double()
    energy = net.energy_fn(real, lambda c: 2 * c, 2)
    torch.testing.assert_close(energy(cand, 1, perturb=lambda e: e + shift),
                               net(real, 2 * cand + shift, 1))
    folded = net.folded_energy_fn(real, lambda r: r, lambda c: 2 * c, 2, 1, KVCache())
    last = folded(None)(cand[:, -1:], 0, perturb=lambda e: e + shift[:, -1:])
    full = net(real, 2 * cand + shift, 0)  # the last column sees only its own candidate
    torch.testing.assert_close(last, full[:, -1:])


def test_norm_eps_rotary_layout_and_weight_init_options():
    net = CausalEBT(arch=ARCH, norm_eps=1e-3, rotary_layout='interleaved', weight_init='xavier')
    norms = [m for m in net.modules() if type(m).__name__ == 'RMSNorm']
    assert len(norms) == 2 * ARCH['depth'] + 1 and all(m.eps == 1e-3 for m in norms)
    assert all(block.rotary_layout == 'interleaved' for block in net.blocks)
    assert CausalTransformer(arch=ARCH).norm.eps == 1e-5  # the reference's RMSNorm eps
    with pytest.raises(ValueError, match='rotary'):
        CausalEBT(arch=ARCH, rotary_layout='pairs')
