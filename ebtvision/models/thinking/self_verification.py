"""Self-verification: keep, of several optimised candidates, the one of lowest energy."""
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
