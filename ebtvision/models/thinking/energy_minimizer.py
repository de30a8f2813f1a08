"""The energy-minimisation ("thinking") loop shared by every EBT task.

A task supplies an ``energy_fn(candidate, step) -> energies`` and an initial candidate;
this module runs gradient descent on the candidate and returns the trajectory. What a
candidate is (pixels, latents, logits) is the task's business, not the loop's.
"""
import inspect
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Union

import torch
from torch import nn

from ebtvision.registry import MODELS

EnergyFn = Callable[[torch.Tensor, int], torch.Tensor]
#: Where Langevin noise goes (see ``EnergyMinimizer``).
LANGEVIN_SPACES = ('candidate', 'embedding')


@dataclass
class ThinkingTrajectory:
    """What one run of the loop produced.

    Attributes:
        candidates: The candidate after each step (``len == steps taken``).
        energies: ``energies[i]`` is the energy of the candidate step ``i`` started from,
            shape as returned by ``energy_fn`` ((B,) per sample, or (B, N) per frame/token).
        final_energy: Energy of the last candidate, when ``score_final=True``.
        landscapes: The step index ``energy_fn`` saw at each step (repeats show where
            the random number of steps repeated the final landscape).
        steps_used: ``(B,)`` steps each sample took, from :meth:`EnergyMinimizer.
            minimize_until_converged` (adaptive compute); ``None`` otherwise.
    """
    candidates: List[torch.Tensor] = field(default_factory=list)
    energies: List[torch.Tensor] = field(default_factory=list)
    final_energy: Optional[torch.Tensor] = None
    landscapes: List[int] = field(default_factory=list)
    steps_used: Optional[torch.Tensor] = None

    @property
    def final(self) -> torch.Tensor:
        return self.candidates[-1]


def _float16_autocast(device_type: str) -> bool:
    """Whether autocast to float16 is on for ``device_type`` (fp16 mixed precision)."""
    try:
        return (torch.is_autocast_enabled(device_type)
                and torch.get_autocast_dtype(device_type) == torch.float16)
    except (TypeError, AttributeError):  # PyTorch < 2.4
        if device_type == 'cuda':
            return torch.is_autocast_enabled() and torch.get_autocast_gpu_dtype() == torch.float16
        return (torch.is_autocast_cpu_enabled()
                and torch.get_autocast_cpu_dtype() == torch.float16)


@MODELS.register_module()
class EnergyMinimizer(nn.Module):
    """Gradient descent on a candidate under a learned energy (Algorithm 1 of the paper).

    Each step: ``y <- y - alpha * dE/dy``. In training the task loss is backpropagated
    through the steps (second-order gradients, ``create_graph=True``); at evaluation the
    loop re-enables autograd locally, so it works inside MMEngine's no-grad val/test loops,
    and builds no second-order graph.

    Args:
        num_steps: Number of energy landscapes (steps) per prediction.
        alpha: Initial step size.
        learnable_alpha: Make ``alpha`` an ``nn.Parameter``; its lr multiplier (3 x alpha)
            comes from ``ThinkerAlphaOptimWrapperConstructor``.
        min_alpha: ``alpha`` is clamped to at least this value.
        random_step_size_scale: ``s``; in training each sample draws its step size from
            ``U[alpha / s, alpha * s]``. 1 disables it.
        random_step_size_dims: How many leading candidate dims draw independent step sizes
            (1 = per sample, 2 = per sample and frame/token).
        final_landscape_repeats: ``(min, max)``; in training the last step is repeated
            ``k ~ U{min..max}`` times (drawn per batch), at evaluation ``max`` times. ``None``
            takes the last step once.
        langevin_sigma: Std of the Gaussian (Langevin) noise of each energy evaluation.
        langevin_space: Where it goes. ``'candidate'``: added to the candidate before the
            evaluation, and it stays in the candidate (Langevin dynamics). ``'embedding'``:
            added to the candidate's embedding inside the energy function, for that
            evaluation only; the gradient is taken w.r.t. the un-noised candidate, which
            keeps no noise (the reference's video EBT). The energy function must then
            take ``perturb=`` (the causal EBT's do).
        langevin_at_eval: Keep the Langevin noise at evaluation (off by default: inference
            is deterministic unless self-verification wants diversity).
        detach_between_steps: Cut the graph between steps (the paper's S1 default). False
            keeps it, so the loss at step i also trains steps < i through the candidate.
        truncate: Only the last step builds a second-order graph; use with a loss on the
            last candidate only (the S2 "truncate" option).
        grad_clamp: ``max_change``: clamp each gradient entry to ``+-max_change / alpha`` so
            no step moves an entry by more than ``max_change``. ``None`` disables it.
    """

    def __init__(self,
                 num_steps: int = 1,
                 alpha: float = 1.0,
                 learnable_alpha: bool = True,
                 min_alpha: float = 1e-4,
                 random_step_size_scale: float = 1.0,
                 random_step_size_dims: int = 1,
                 final_landscape_repeats: Optional[Sequence[int]] = None,
                 langevin_sigma: float = 0.0,
                 langevin_space: str = 'candidate',
                 langevin_at_eval: bool = False,
                 detach_between_steps: bool = True,
                 truncate: bool = False,
                 grad_clamp: Optional[float] = None) -> None:
        super().__init__()
        if num_steps < 1:
            raise ValueError(f'num_steps must be >= 1, got {num_steps}')
        if alpha <= 0:
            raise ValueError(f'alpha must be > 0, got {alpha}')
        if random_step_size_scale < 1:
            raise ValueError(f'random_step_size_scale must be >= 1, got {random_step_size_scale}')
        if final_landscape_repeats is not None:
            low, high = final_landscape_repeats
            if not 1 <= low <= high:
                raise ValueError('final_landscape_repeats must be (min, max) with '
                                 f'1 <= min <= max, got {final_landscape_repeats}')
        if langevin_space not in LANGEVIN_SPACES:
            raise ValueError(f'langevin_space must be one of {LANGEVIN_SPACES}, got '
                             f'{langevin_space!r}')
        self.num_steps = num_steps
        self.langevin_space = langevin_space
        self.alpha = nn.Parameter(torch.tensor(float(alpha)), requires_grad=learnable_alpha)
        self.min_alpha = min_alpha
        self.random_step_size_scale = random_step_size_scale
        self.random_step_size_dims = random_step_size_dims
        self.final_landscape_repeats = final_landscape_repeats
        self.langevin_sigma = langevin_sigma
        self.langevin_at_eval = langevin_at_eval
        self.detach_between_steps = detach_between_steps
        self.truncate = truncate
        self.grad_clamp = grad_clamp

    def landscape_schedule(self, num_steps: int, randomize: bool) -> List[int]:
        """Landscape (step) index of every update, with final-landscape repeats."""
        schedule = list(range(num_steps))
        if self.final_landscape_repeats is not None:
            low, high = self.final_landscape_repeats
            repeats = int(torch.randint(low, high + 1, ()).item()) if randomize else high
            schedule += [num_steps - 1] * (repeats - 1)
        return schedule

    def step_sizes(self, candidate: torch.Tensor, randomize: bool) -> torch.Tensor:
        """The step size, per sample (or per frame/token) when randomised."""
        alpha = self.alpha.clamp(min=self.min_alpha)
        if not randomize or self.random_step_size_scale == 1:
            return alpha
        dims = self.random_step_size_dims
        shape = candidate.shape[:dims] + (1, ) * (candidate.dim() - dims)
        low = alpha / self.random_step_size_scale
        high = alpha * self.random_step_size_scale
        return low + torch.rand(shape, device=candidate.device, dtype=candidate.dtype) * (high - low)

    def forward(self,
                energy_fn: EnergyFn,
                init: torch.Tensor,
                create_graph: Optional[bool] = None,
                num_steps: Optional[int] = None,
                randomize: Optional[bool] = None,
                score_final: bool = False,
                alpha: Optional[Union[float, torch.Tensor]] = None,
                transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
                ) -> ThinkingTrajectory:
        """Run the loop.

        Args:
            energy_fn: Maps ``(candidate, landscape_index)`` to energies whose sum is
                minimised (shape (B,) or (B, N)).
            init: Initial candidate; it is detached (the loop never backpropagates into it).
            create_graph: Build the second-order graph (default: ``self.training``).
            num_steps: Override the number of landscapes ("think longer" at inference).
            randomize: Use the random step size / steps / Langevin noise (default:
                ``self.training``; Langevin at eval also needs ``langevin_at_eval``).
            score_final: Also evaluate the energy of the final candidate.
            alpha: Override the step size (inference only; it is not learned then): a
                number or a (B,) tensor, one per sample.
            transform: Applied to the candidate before each energy evaluation; the
                gradient step is then taken on the transformed candidate (text: logits are
                turned into probabilities, and the step moves the probabilities, as in the
                reference implementation).
        """
        create_graph = self.training if create_graph is None else create_graph
        randomize = self.training if randomize is None else randomize
        schedule = self.landscape_schedule(num_steps or self.num_steps, randomize)
        step_size = (self.step_sizes(init, randomize) if alpha is None else
                     self.given_step_size(alpha, init))
        if not create_graph:
            step_size = step_size.detach()
        use_langevin = self.langevin_sigma > 0 and (randomize or self.langevin_at_eval)
        noise_in_embedding = use_langevin and self.langevin_space == 'embedding'
        if noise_in_embedding and 'perturb' not in inspect.signature(energy_fn).parameters:
            raise ValueError("langevin_space='embedding' needs an energy function that takes "
                             'perturb= (the causal EBT energies do); this one does not')
        trajectory = ThinkingTrajectory()
        candidate = init.detach()
        with torch.enable_grad():
            for index, landscape in enumerate(schedule):
                last = index == len(schedule) - 1
                graph_here = create_graph and (last or not self.truncate)
                if self.detach_between_steps or not candidate.requires_grad:
                    candidate = candidate.detach().requires_grad_()
                if use_langevin and not noise_in_embedding:
                    candidate = candidate + self.langevin_sigma * torch.randn_like(candidate)
                if transform is not None:
                    candidate = transform(candidate)
                extra = dict(perturb=self.langevin_noise) if noise_in_embedding else {}
                energies = energy_fn(candidate, landscape, **extra)
                grad, = torch.autograd.grad(energies.sum(), candidate, create_graph=graph_here)
                if not torch.isfinite(grad).all() and _float16_autocast(candidate.device.type):
                    # float16 overflowed: redo this step in float32. Backward ops keep
                    # their forward's dtypes, so casting the energies or leaving autocast
                    # around autograd.grad alone would change nothing, and no single
                    # scale for the inner gradient avoids both overflow and underflow.
                    # Overflow is rare, the redo costs one evaluation. A float32 gradient
                    # that is still non-finite is passed on in training: the loss is then
                    # non-finite and the AMP optimizer wrapper skips the step (and stops
                    # training if that keeps happening).
                    with torch.autocast(candidate.device.type, enabled=False):
                        energies = energy_fn(candidate, landscape, **extra)
                        grad, = torch.autograd.grad(energies.sum(), candidate,
                                                    create_graph=graph_here)
                candidate = candidate - step_size * self._energy_grad(
                    energies, candidate, graph_here, index, landscape, grad=grad)
                if not graph_here:
                    candidate = candidate.detach()
                    energies = energies.detach()
                trajectory.candidates.append(candidate)
                trajectory.energies.append(energies)
                trajectory.landscapes.append(landscape)
            if score_final:
                with torch.no_grad():
                    final = candidate.detach()
                    trajectory.final_energy = energy_fn(
                        final if transform is None else transform(final), schedule[-1])
        return trajectory

    def langevin_noise(self, embedded: torch.Tensor) -> torch.Tensor:
        """``embedded`` plus N(0, langevin_sigma^2) noise of its shape (no gradient)."""
        return embedded + self.langevin_sigma * torch.randn_like(embedded.detach())

    @staticmethod
    def given_step_size(alpha, init: torch.Tensor) -> torch.Tensor:
        """An inference step size: a number, or one per sample ``(B,)`` (broadcast)."""
        size = torch.as_tensor(alpha, device=init.device, dtype=init.dtype)
        if size.dim() == 0:
            return size
        if size.shape != init.shape[:1]:
            raise ValueError(f'per-sample alpha must have shape ({init.shape[0]},), got '
                             f'{tuple(size.shape)}')
        return size.reshape(-1, *([1] * (init.dim() - 1)))

    def _energy_grad(self, energies: torch.Tensor, candidate: torch.Tensor, create_graph: bool,
                     index: int, landscape: int,
                     grad: Optional[torch.Tensor] = None) -> torch.Tensor:
        """dE/dy (``grad`` when already taken), checked for NaN/Inf and clamped
        (``grad_clamp``)."""
        if grad is None:
            grad, = torch.autograd.grad(energies.sum(), candidate, create_graph=create_graph)
        if not torch.isfinite(grad).all() and not (
                self.training and _float16_autocast(candidate.device.type)):
            raise FloatingPointError(
                f'non-finite energy gradient at thinking step {index} (landscape '
                f'{landscape}); energies finite: {bool(torch.isfinite(energies).all())}. '
                'Lower alpha or the learning rate, or set grad_clamp.')
        if self.grad_clamp is not None:
            bound = self.grad_clamp / self.alpha.clamp(min=self.min_alpha)
            grad = torch.maximum(torch.minimum(grad, bound), -bound)
        return grad

    @torch.no_grad()
    def minimize_until_converged(self,
                                 energy_fn_for: Callable[[torch.Tensor], EnergyFn],
                                 init: torch.Tensor,
                                 tolerance: float,
                                 max_steps: Optional[int] = None,
                                 alpha: Optional[Union[float, torch.Tensor]] = None,
                                 transform: Optional[Callable] = None) -> ThinkingTrajectory:
        """Inference with adaptive compute: each sample stops once its energy has converged.

        A sample stops after step k when its energy changed by at most ``tolerance``
        relative to the step before, ``|E_k - E_{k-1}| <= tolerance * |E_{k-1}|`` (energies
        summed over frames / tokens), or when ``max_steps`` is reached. Stopped samples are
        not evaluated again: each step only runs the samples still thinking.

        Args:
            energy_fn_for: ``energy_fn_for(index)`` returns the energy function of the
                samples ``index`` (a long tensor into the batch), e.g. with their context.
            init: Initial candidates (B, ...).
            tolerance: Relative energy change under which a sample has converged (> 0).
            max_steps: Step budget (default: ``num_steps``; longer thinking allowed).
            alpha: Step size override: a number or one per sample (B,).
            transform: As in :meth:`forward`.

        Returns:
            The trajectory over the full batch: a stopped sample keeps its candidate and
            energy in later steps; ``steps_used`` says how many steps each sample took.
        """
        if tolerance <= 0:
            raise ValueError(f'tolerance must be > 0, got {tolerance}')
        schedule = self.landscape_schedule(max_steps or self.num_steps, randomize=False)
        step_size = (self.alpha.clamp(min=self.min_alpha).detach() if alpha is None else
                     self.given_step_size(alpha, init))
        candidate = init.detach().clone()
        batch = candidate.shape[0]
        steps_used = torch.zeros(batch, dtype=torch.long, device=init.device)
        active = torch.arange(batch, device=init.device)
        previous = None  # energies (B,) of the step before, summed over frames
        last_energies: Optional[torch.Tensor] = None
        trajectory = ThinkingTrajectory(steps_used=steps_used)
        for index, landscape in enumerate(schedule + [None]):
            with torch.enable_grad():
                current = candidate[active].requires_grad_()
                if transform is not None:
                    current = transform(current)
                energies = energy_fn_for(active)(
                    current, schedule[-1] if landscape is None else landscape)
            if last_energies is None:
                last_energies = energies.new_zeros((batch, ) + tuple(energies.shape[1:]))
            last_energies = last_energies.clone()
            last_energies[active] = energies.detach()
            total = last_energies.reshape(batch, -1).sum(1)
            if landscape is None:  # the final candidates' energies
                break
            with torch.enable_grad():
                grad = self._energy_grad(energies, current, False, index, landscape)
            if previous is not None:
                still = (total - previous)[active].abs() > tolerance * previous[active].abs()
                active, current, grad = active[still], current[still], grad[still]
                if len(active) == 0:
                    break
            previous = total
            candidate = candidate.clone()
            size = step_size[active] if step_size.dim() else step_size
            candidate[active] = current.detach() - size * grad
            steps_used[active] += 1
            trajectory.energies.append(last_energies)
            trajectory.candidates.append(candidate)
            trajectory.landscapes.append(landscape)
        trajectory.final_energy = last_energies
        return trajectory

    def extra_repr(self) -> str:
        return (f'num_steps={self.num_steps}, alpha={self.alpha.item():g}, '
                f'learnable_alpha={self.alpha.requires_grad}, truncate={self.truncate}, '
                f'langevin_sigma={self.langevin_sigma:g} ({self.langevin_space})')


def trajectory_loss(trajectory: ThinkingTrajectory, target: torch.Tensor,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    truncate: bool) -> torch.Tensor:
    """Task loss over a trajectory: mean over steps (S1) or on the last step (truncate)."""
    if truncate:
        return loss_fn(trajectory.final, target)
    losses = [loss_fn(candidate, target) for candidate in trajectory.candidates]
    return torch.stack(losses).mean()
