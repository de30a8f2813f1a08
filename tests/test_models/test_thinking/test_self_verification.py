"""Self-verification: keeping the candidate of lowest energy per sample or per frame."""
import pytest
import torch

from ebtvision.models import select_lowest_energy


def test_select_lowest_energy_per_sample_and_per_frame():
    candidates = torch.arange(3 * 2 * 4, dtype=torch.float32).reshape(3, 2, 4, 1)
    energies = torch.tensor([[[3., 1., 2., 0.], [5., 5., 5., 5.]],
                             [[1., 2., 0., 9.], [4., 6., 5., 5.]],
                             [[2., 3., 1., 1.], [6., 4., 5., 5.]]])
    best, best_energy, index = select_lowest_energy(candidates, energies)
    assert index.tolist() == [[1, 0, 1, 0], [1, 2, 0, 0]]
    torch.testing.assert_close(best_energy, energies.min(0).values)
    for b in range(2):
        for t in range(4):
            assert best[b, t, 0] == candidates[index[b, t], b, t, 0]
    # Per sample (no frame dim).
    best, _, index = select_lowest_energy(candidates[..., 0], energies[..., 0])
    assert index.tolist() == [1, 1] and torch.equal(best, candidates[1, :, :, 0])
    with pytest.raises(ValueError):
        select_lowest_energy(candidates, energies[:2])
