"""Self-verification: keep, of several optimised candidates, the one of lowest energy."""
from typing import Callable, List, NamedTuple, Optional

import torch


def select_lowest_energy(candidates: torch.Tensor, energies: torch.Tensor):
    """Pick per sample (and per frame / token) the candidate with the lowest energy.

    Args:
        candidates: ``(M, B, ...)`` final candidates of M independent thinking runs.
        energies: ``(M, B)`` or ``(M, B, T)`` their final energies; with a frame / token
            dim T the choice is made per frame (``candidates`` is then (M, B, T, ...)).

    Returns:
        ``(best, best_energy, index)``: ``(B, ...)`` candidates, ``(B[, T])`` energies and
        the ``(B[, T])`` index of the chosen run.
    """
    if candidates.shape[:energies.dim()] != energies.shape:
        raise ValueError(f'energies {tuple(energies.shape)} do not match the leading dims '
                         f'of candidates {tuple(candidates.shape)}')
    best_energy, index = energies.min(dim=0)
    gather_index = index.reshape(1, *index.shape, *([1] * (candidates.dim() - energies.dim())))
    gather_index = gather_index.expand(1, *candidates.shape[1:])
    best = candidates.gather(0, gather_index).squeeze(0)
    return best, best_energy, index


class VerifiedThinking(NamedTuple):
    """The kept candidates of :func:`think_with_candidates`."""
    best: torch.Tensor  #: (B, ...) lowest-energy candidate per sample (and frame / token)
    energy: torch.Tensor  #: (B[, T]) its final energy
    trajectory: torch.Tensor  #: (steps + 1, B[, T]) energies of the kept candidates
    #: (B,) steps used (adaptive only): the kept candidate's, or with per-position energies
    #: the mean over candidates (positions may keep different ones)
    steps_used: Optional[torch.Tensor]
    chosen: torch.Tensor  #: (B[, T]) index of the kept candidate
    candidate_energies: torch.Tensor  #: (M, B[, T]) final energy of every candidate
    #: with ``keep_candidates``: the kept candidate after each step, each (B, ...)
    steps: Optional[List[torch.Tensor]] = None


def candidate_step_sizes(thinker, alpha, count: int, batch: int, scale: float,
                         generator: Optional[torch.Generator]) -> torch.Tensor:
    """(M * B,) step sizes: the first candidate takes ``alpha`` (default: the thinker's),
    the others one drawn log-uniformly from ``[alpha / scale, alpha * scale]`` (S2's
    random step size)."""
    base = float(alpha or thinker.alpha.detach().clamp(min=thinker.min_alpha))
    exponents = torch.rand(count - 1, batch, generator=generator) * 2 - 1
    return (torch.cat([torch.ones(1, batch), scale**exponents]) * base).flatten()


def think_with_candidates(thinker, energy_fn_for: Callable, starts: torch.Tensor,
                          num_steps: Optional[int] = None, alpha=None,
                          tolerance: Optional[float] = None,
                          transform: Optional[Callable] = None,
                          step_scale: Optional[float] = None,
                          start_noise: float = 0.0,
                          generator: Optional[torch.Generator] = None,
                          keep_candidates: bool = False) -> VerifiedThinking:
    """Think from M starts per sample as one batch; keep per position the lowest energy.

    Args:
        thinker: The :class:`EnergyMinimizer`.
        energy_fn_for: ``energy_fn_for(index)`` -> energy function of the folded samples
            ``index`` (a long tensor into the M x B batch; ``None`` for all of them),
            returning (n,) energies (one per sample) or (n, T) (one per frame / token).
        starts: (M, B, ...) initial candidates.
        num_steps, alpha: Inference overrides.
        tolerance: Adaptive compute (see ``EnergyMinimizer.minimize_until_converged``).
        transform: Candidate transform of the thinker (see ``EnergyMinimizer.forward``).
        step_scale: Candidates 1..M-1 take their own step size within this factor of
            alpha (see :func:`candidate_step_sizes`), drawn from ``generator`` first;
            ``None``: every candidate takes ``alpha``.
        start_noise: Std of Gaussian noise added to the starts of candidates 1..M-1,
            drawn from ``generator`` after the step sizes.
        keep_candidates: Also return the kept candidate after every step.
    """
    count, batch = starts.shape[:2]
    if count > 1 and step_scale is not None:
        alpha = candidate_step_sizes(thinker, alpha, count, batch, step_scale, generator).to(
            device=starts.device, dtype=starts.dtype)
    if count > 1 and start_noise:
        starts = starts.clone()
        jitter = torch.randn(starts[1:].shape, generator=generator)
        starts[1:] += start_noise * jitter.to(device=starts.device, dtype=starts.dtype)
    folded = starts.flatten(0, 1)
    if tolerance:
        trajectory = thinker.minimize_until_converged(energy_fn_for, folded, tolerance,
                                                      max_steps=num_steps, alpha=alpha,
                                                      transform=transform)
    else:
        trajectory = thinker(energy_fn_for(None), folded, create_graph=False, randomize=False,
                             score_final=True, num_steps=num_steps, alpha=alpha,
                             transform=transform)
    energies = torch.stack(trajectory.energies + [trajectory.final_energy])
    energies = energies.unflatten(1, (count, batch))  # (S + 1, M, B[, T])
    best, best_energy, choice = select_lowest_energy(
        trajectory.final.unflatten(0, (count, batch)), energies[-1])
    kept = energies.gather(1, choice.expand(energies.shape[0], 1, *choice.shape)).squeeze(1)
    per_sample = choice.dim() == 1
    positions = torch.arange(batch, device=choice.device)

    def kept_of(folded_values: torch.Tensor) -> torch.Tensor:  # (M * B, ...) -> (B, ...)
        return folded_values.unflatten(0, (count, batch))[choice, positions]

    steps_used = None
    if trajectory.steps_used is not None:
        steps_used = (kept_of(trajectory.steps_used) if per_sample else
                      trajectory.steps_used.unflatten(0, (count, batch)).float().mean(0))
    steps = None
    if keep_candidates:
        if not per_sample:
            raise ValueError('keep_candidates needs one energy per sample')
        steps = [kept_of(step).detach() for step in trajectory.candidates]
    return VerifiedThinking(best.detach(), best_energy.detach(), kept.detach(), steps_used,
                            choice, energies[-1].detach(), steps)
