"""Self-verification: keep, of several optimised candidates, the one of lowest energy."""
from typing import Callable, NamedTuple, Optional

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
    best: torch.Tensor  #: (B, T, ...) lowest-energy candidate per sample and position
    energy: torch.Tensor  #: (B, T) its final energy
    trajectory: torch.Tensor  #: (steps + 1, B, T) energies of the kept candidates
    steps_used: Optional[torch.Tensor]  #: (B,) mean steps over candidates (adaptive only)


def think_with_candidates(thinker, energy_fn_for: Callable, starts: torch.Tensor,
                          num_steps: Optional[int] = None, alpha=None,
                          tolerance: Optional[float] = None,
                          transform: Optional[Callable] = None) -> VerifiedThinking:
    """Think from M starts per sample as one batch; keep per position the lowest energy.

    Args:
        thinker: The :class:`EnergyMinimizer`.
        energy_fn_for: ``energy_fn_for(index)`` -> energy function of the folded samples
            ``index`` (a long tensor into the M x B batch; ``None`` for all of them),
            returning (n, T) energies (one per frame / token).
        starts: (M, B, T, ...) initial candidates.
        num_steps, alpha: Inference overrides.
        tolerance: Adaptive compute (see ``EnergyMinimizer.minimize_until_converged``).
        transform: Candidate transform of the thinker (see ``EnergyMinimizer.forward``).
    """
    count, batch = starts.shape[:2]
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
    energies = energies.unflatten(1, (count, batch))  # (S + 1, M, B, T)
    best, best_energy, choice = select_lowest_energy(
        trajectory.final.unflatten(0, (count, batch)), energies[-1])
    kept = energies.gather(1, choice.expand(energies.shape[0], 1, *choice.shape)).squeeze(1)
    steps_used = None
    if trajectory.steps_used is not None:
        # Positions may keep different candidates: report the mean over candidates.
        steps_used = trajectory.steps_used.unflatten(0, (count, batch)).float().mean(0)
    return VerifiedThinking(best.detach(), best_energy.detach(), kept.detach(), steps_used)
