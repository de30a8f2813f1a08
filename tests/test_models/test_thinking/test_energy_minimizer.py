"""The energy-minimisation loop on toy energies and a tiny double-precision EBT."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch.func import functional_call

from ebtvision.models import BidirectionalEBT, EnergyMinimizer, trajectory_loss


def quadratic(center: torch.Tensor, curvature: float = 2.0):
    """E(y) = curvature / 2 * ||y - center||^2 per sample: convex, minimum at center."""

    def energy(y, step):
        return 0.5 * curvature * ((y - center)**2).flatten(1).sum(1)

    return energy


def test_descends_a_convex_energy_exactly():
    center = torch.randn(3, 5)
    thinker = EnergyMinimizer(num_steps=4, alpha=0.2, learnable_alpha=False).eval()
    init = torch.zeros(3, 5)
    trajectory = thinker(quadratic(center), init, score_final=True)
    energies = torch.stack(trajectory.energies + [trajectory.final_energy])
    assert (energies[1:] < energies[:-1]).all()
    # y_k = c + (1 - alpha * k)^n (y_0 - c) for a quadratic with curvature k.
    expected = center + (1 - 0.2 * 2.0)**4 * (init - center)
    torch.testing.assert_close(trajectory.final, expected)
    assert len(trajectory.candidates) == 4 and trajectory.landscapes == [0, 1, 2, 3]


def test_runs_under_no_grad_and_returns_detached_candidates():
    center = torch.randn(2, 4)
    thinker = EnergyMinimizer(num_steps=2, alpha=0.1).eval()
    with torch.no_grad():
        trajectory = thinker(quadratic(center), torch.zeros(2, 4), score_final=True)
    assert all(not c.requires_grad for c in trajectory.candidates)
    assert trajectory.final_energy.sum() < trajectory.energies[0].sum()


def tiny_ebt():
    torch.manual_seed(0)
    model = BidirectionalEBT(arch=dict(depth=1, num_heads=2, embed_dims=8), img_size=4,
                             patch_size=2, in_channels=1).double()
    with torch.no_grad():  # adaLN-Zero / zero final layer would make every gradient vanish
        for param in model.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return model


def test_second_order_path_matches_finite_differences():
    model = tiny_ebt()
    # Keeping the graph between steps makes the loss the plain composition of the steps,
    # so its exact derivative is what finite differences measure.
    thinker = EnergyMinimizer(num_steps=2, alpha=0.5, detach_between_steps=False).double()
    init = torch.randn(2, 1, 4, 4, dtype=torch.double)
    target = torch.randn(2, 1, 4, 4, dtype=torch.double)

    # gradcheck the loss as a function of one weight and alpha: this differentiates
    # through autograd.grad(create_graph=True), i.e. the second-order path.
    def func(w, alpha):
        def energy(y, step):
            return functional_call(model, {'final_layer.linear.weight': w}, (y, ))

        trajectory = functional_call(thinker, {'alpha': alpha}, (energy, init),
                                     dict(create_graph=True))
        return trajectory_loss(trajectory, target, torch.nn.functional.mse_loss, False)

    w = model.final_layer.linear.weight.detach().clone().requires_grad_()
    alpha = torch.tensor(0.5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(func, (w, alpha), eps=1e-6, atol=1e-5)


def test_energy_gradient_of_tiny_ebt_passes_gradgradcheck():
    model = tiny_ebt()
    x = torch.randn(2, 1, 4, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda y: model(y), (x, ), eps=1e-6, atol=1e-5)


def test_nan_gradient_raises_a_clear_error():
    thinker = EnergyMinimizer(num_steps=1, alpha=1.0)

    def broken(y, step):
        return (y * float('nan')).sum(1)

    with pytest.raises(FloatingPointError, match='non-finite energy gradient'):
        thinker(broken, torch.ones(2, 3))


def test_random_step_size_per_sample_within_bounds():
    thinker = EnergyMinimizer(num_steps=1, alpha=0.1, learnable_alpha=False,
                              random_step_size_scale=2.0).train()
    center = torch.ones(64, 1)
    trajectory = thinker(quadratic(center, curvature=1.0), torch.zeros(64, 1))
    step = trajectory.final.squeeze(1)  # = alpha_i * 1 * (center - 0)
    assert step.min() >= 0.05 - 1e-6 and step.max() <= 0.2 + 1e-6
    assert step.std() > 0.01
    eval_step = thinker.eval()(quadratic(center, 1.0), torch.zeros(64, 1)).final
    torch.testing.assert_close(eval_step, torch.full_like(eval_step, 0.1))


def test_step_sizes_per_frame():
    thinker = EnergyMinimizer(alpha=1.0, random_step_size_scale=3.0, random_step_size_dims=2)
    sizes = thinker.step_sizes(torch.zeros(4, 5, 7), randomize=True)
    assert sizes.shape == (4, 5, 1)


def test_final_landscape_repeats():
    thinker = EnergyMinimizer(num_steps=2, alpha=0.1, final_landscape_repeats=(1, 3)).train()
    lengths = {len(thinker(quadratic(torch.ones(1, 1)), torch.zeros(1, 1)).candidates)
               for _ in range(40)}
    assert lengths == {2, 3, 4}
    trajectory = thinker.eval()(quadratic(torch.ones(1, 1)), torch.zeros(1, 1))
    assert trajectory.landscapes == [0, 1, 1, 1]


def test_langevin_noise_only_when_randomizing():
    thinker = EnergyMinimizer(num_steps=2, alpha=0.1, langevin_sigma=1.0)
    energy = quadratic(torch.zeros(2, 3))
    train_runs = [thinker.train()(energy, torch.ones(2, 3)).final for _ in range(2)]
    assert not torch.allclose(*train_runs)
    eval_runs = [thinker.eval()(energy, torch.ones(2, 3)).final for _ in range(2)]
    torch.testing.assert_close(*eval_runs)



def test_langevin_noise_in_embedding_space_is_for_the_evaluation_only():
    # E(y) = ||W y - c||^2 / 2 with y (2, 3) embedded to (2, 5): the noise must have the
    # embedding's shape, enter only the energy, and leave the candidate un-noised.
    torch.manual_seed(0)
    weight, center = torch.randn(5, 3, dtype=torch.double), torch.randn(2, 5, dtype=torch.double)
    seen = []

    def energy(candidate, landscape, perturb=None):
        embedded = candidate @ weight.t()
        if perturb is not None:
            embedded = perturb(embedded)
            seen.append(embedded - candidate @ weight.t())
        return 0.5 * (embedded - center).pow(2).sum(-1)

    thinker = EnergyMinimizer(num_steps=1, alpha=0.1, langevin_sigma=0.5,
                              langevin_space='embedding').double().train()
    init = torch.randn(2, 3, dtype=torch.double)
    step = thinker(energy, init).final
    noise, = seen
    assert noise.shape == (2, 5) and noise.abs().sum() > 0
    # The gradient at the noised embedding, w.r.t. the un-noised candidate.
    grad = (init @ weight.t() + noise - center) @ weight
    torch.testing.assert_close(step, init - 0.1 * grad)
    # In candidate space the same sigma moves the candidate itself (and keeps it).
    candidate_space = EnergyMinimizer(num_steps=1, alpha=0.1, langevin_sigma=0.5).double().train()
    assert not torch.allclose(candidate_space(energy, init).final, step)
    # No noise at evaluation (langevin_at_eval=False), in either space.
    seen.clear()
    thinker.eval()(energy, init)
    assert not seen


def test_embedding_space_langevin_needs_an_energy_that_takes_perturb():
    thinker = EnergyMinimizer(alpha=0.1, langevin_sigma=1.0, langevin_space='embedding').train()
    with pytest.raises(ValueError, match='perturb='):
        thinker(quadratic(torch.zeros(1, 2)), torch.ones(1, 2))
    with pytest.raises(ValueError, match='langevin_space'):
        EnergyMinimizer(langevin_space='latent')


def test_truncate_builds_graph_on_last_step_only():
    model = tiny_ebt()
    thinker = EnergyMinimizer(num_steps=3, alpha=0.1, truncate=True).double().train()
    trajectory = thinker(lambda y, s: model(y), torch.randn(1, 1, 4, 4, dtype=torch.double))
    assert [c.requires_grad for c in trajectory.candidates] == [False, False, True]


def test_keeping_the_graph_links_steps():
    center = torch.randn(2, 3)
    kept = EnergyMinimizer(num_steps=2, alpha=0.1, detach_between_steps=False).train()
    trajectory = kept(quadratic(center), torch.zeros(2, 3))
    first, final = trajectory.candidates
    grad, = torch.autograd.grad(final.sum(), first)
    torch.testing.assert_close(grad, torch.full_like(grad, 1 - 0.1 * 2.0))
    cut = EnergyMinimizer(num_steps=2, alpha=0.1).train()
    trajectory = cut(quadratic(center), torch.zeros(2, 3))
    with pytest.raises(RuntimeError):
        torch.autograd.grad(trajectory.final.sum(), trajectory.candidates[0])


def test_gradient_clamp_limits_each_change():
    thinker = EnergyMinimizer(num_steps=1, alpha=1.0, grad_clamp=0.25, learnable_alpha=False)
    final = thinker(quadratic(torch.full((2, 4), 10.0)), torch.zeros(2, 4)).final
    torch.testing.assert_close(final, torch.full_like(final, 0.25))


def test_alpha_is_learnable_with_its_own_lr_multiplier():
    model = torch.nn.Module()
    model.thinker = EnergyMinimizer(alpha=3.0)
    model.other = torch.nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
        paramwise_cfg=dict(custom_keys={'thinker.alpha': dict(lr_mult=9.0, decay_mult=0.0)})))
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    alpha_group = groups[id(model.thinker.alpha)]
    assert alpha_group['lr'] == pytest.approx(9e-3) and alpha_group['weight_decay'] == 0
    assert groups[id(model.other.weight)]['lr'] == pytest.approx(1e-3)


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError):
        EnergyMinimizer(num_steps=0)
    with pytest.raises(ValueError):
        EnergyMinimizer(final_landscape_repeats=(3, 1))
    with pytest.raises(ValueError):
        EnergyMinimizer(random_step_size_scale=0.5)


def offset_quadratic(center: torch.Tensor, curvature: torch.Tensor, offset: float = 1.0):
    """E = offset + curvature_b / 2 * ||y_b - center_b||^2: relative change shrinks to 0."""

    def energy_for(index):
        def energy(y, step):
            return offset + 0.5 * curvature[index] * ((y - center[index])**2).flatten(1).sum(1)
        return energy

    return energy_for


def test_adaptive_stopping_on_a_convex_energy():
    center = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    curvature = torch.tensor([4.0, 1.0, 0.1])  # fast, medium, slow to converge (alpha 0.2)
    thinker = EnergyMinimizer(num_steps=2, alpha=0.2, learnable_alpha=False).eval()
    calls = []

    def energy_for(index):
        calls.append(len(index))
        return offset_quadratic(center, curvature, offset=0.01)(index)

    trajectory = thinker.minimize_until_converged(energy_for, torch.zeros(3, 4), tolerance=1e-3,
                                                  max_steps=40)
    used = trajectory.steps_used.tolist()
    assert used[0] < used[1] < used[2] == 40  # the slow one hits the budget
    # Each sample followed plain gradient descent for exactly its own number of steps.
    for b, steps in enumerate(used):
        expected = center[b] * (1 - (1 - 0.2 * curvature[b])**steps)
        torch.testing.assert_close(trajectory.final[b], expected)
    # Stopped samples are not evaluated again: the active batch only shrinks.
    assert calls == sorted(calls, reverse=True) and calls[-1] == 1
    assert sum(calls) < 3 * 41
    # A stopped sample's energy is flat afterwards and its last change under tolerance.
    energies = torch.stack(trajectory.energies + [trajectory.final_energy])
    first = used[0]
    assert (energies[first:, 0] == energies[first, 0]).all()
    change = (energies[first, 0] - energies[first - 1, 0]).abs() / energies[first - 1, 0].abs()
    assert change <= 1e-3


def test_adaptive_matches_fixed_steps_while_thinking():
    center = torch.randn(2, 3)
    curvature = torch.tensor([1.0, 2.0])
    thinker = EnergyMinimizer(num_steps=3, alpha=0.1, learnable_alpha=False).eval()
    adaptive = thinker.minimize_until_converged(offset_quadratic(center, curvature),
                                                torch.zeros(2, 3), tolerance=1e-9)
    fixed = thinker(offset_quadratic(center, curvature)(torch.arange(2)), torch.zeros(2, 3),
                    score_final=True)
    assert adaptive.steps_used.tolist() == [3, 3]
    torch.testing.assert_close(adaptive.final, fixed.final)
    torch.testing.assert_close(torch.stack(adaptive.energies), torch.stack(fixed.energies))
    with pytest.raises(ValueError, match='tolerance'):
        thinker.minimize_until_converged(offset_quadratic(center, curvature), center, 0.0)


def test_transform_moves_the_transformed_candidate():
    # E(p) = -<p, w> on p = softmax(y): the step is p + alpha * w, taken on p itself.
    weights = torch.tensor([[1.0, 2.0, 3.0]])
    thinker = EnergyMinimizer(num_steps=1, alpha=0.5, learnable_alpha=False).eval()
    init = torch.tensor([[0.3, -0.2, 0.1]])
    trajectory = thinker(lambda p, step: -(p * weights).sum(1), init, score_final=True,
                         transform=lambda y: y.softmax(-1))
    torch.testing.assert_close(trajectory.final, init.softmax(-1) + 0.5 * weights)
    final_probs = trajectory.final.softmax(-1)
    torch.testing.assert_close(trajectory.final_energy, -(final_probs * weights).sum(1))
    adaptive = thinker.minimize_until_converged(
        lambda index: (lambda p, step: -(p * weights).sum(1)), init, tolerance=1e-9,
        max_steps=1, transform=lambda y: y.softmax(-1))
    torch.testing.assert_close(adaptive.final, trajectory.final)


def steep_energy():
    """E(y) = 300 * (300 * y): every value fits in float16, the gradient 9e4 does not
    (float16's largest is 65504), so float16's backward overflows."""
    first, second = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        first.weight.fill_(300.0)
        second.weight.fill_(300.0)
    return lambda y, step: second(first(y)).squeeze(-1)


def test_float16_overflow_of_the_energy_gradient_is_redone_in_float32():
    energy, init = steep_energy(), torch.full((2, 1), 1e-3)
    thinker = EnergyMinimizer(num_steps=2, alpha=1e-5, min_alpha=1e-7).train()
    expected = thinker(energy, init)
    expected.final.sum().backward()
    expected_alpha_grad, thinker.alpha.grad = thinker.alpha.grad, None
    with torch.autocast('cpu', dtype=torch.float16):
        y = init.clone().requires_grad_()
        plain, = torch.autograd.grad(energy(y, 0).sum(), y)
        assert torch.isinf(plain).all()  # what the step would have used
        trajectory = thinker(energy, init)
        loss = trajectory.final.sum()
    loss.backward()  # through the float32 second-order graph
    torch.testing.assert_close(trajectory.final, expected.final)  # -1.8 = 1e-3 - 2 * 0.9
    torch.testing.assert_close(thinker.alpha.grad, expected_alpha_grad)


def test_under_float16_amp_a_nonfinite_gradient_is_passed_to_the_loss():
    # Still non-finite in float32: training passes it on (the AMP optimizer wrapper then
    # skips the step); evaluation, bfloat16 and float32 raise as before.
    def broken(y, step):
        return (y * float('nan')).sum(1)

    thinker = EnergyMinimizer(num_steps=1, alpha=1.0).train()
    with torch.autocast('cpu', dtype=torch.float16):
        assert torch.isnan(thinker(broken, torch.ones(2, 3)).final).all()
        with pytest.raises(FloatingPointError, match='non-finite energy gradient'):
            thinker.eval()(broken, torch.ones(2, 3))
    thinker.train()
    with torch.autocast('cpu', dtype=torch.bfloat16), pytest.raises(
            FloatingPointError, match='non-finite energy gradient'):
        thinker(broken, torch.ones(2, 3))
