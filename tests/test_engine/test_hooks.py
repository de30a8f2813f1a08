"""Visualisation grid and the resume-state hook's RNG round trip."""
import numpy as np
import torch

from ebtvision.engine.hooks.denoise_visualization_hook import denoise_grid
from ebtvision.visualization import to_uint8_hwc
from ebtvision.engine.hooks.resume_state_hook import capture_rng_state, restore_rng_state
from ebtvision.structures import DenoiseDataSample


def test_grid_layout_noisy_denoised_pairs_then_clean():
    samples = []
    for value in (-1.0, 1.0):
        sample = DenoiseDataSample()
        sample.gt_img = torch.full((3, 8, 8), value)
        sample.noisy_imgs = {'0.1': torch.zeros(3, 8, 8), '0.2': torch.zeros(3, 8, 8)}
        sample.pred_imgs = {'0.1': torch.ones(3, 8, 8), '0.2': torch.ones(3, 8, 8)}
        samples.append(sample)
    grid = denoise_grid(samples, pad=1)
    assert grid.shape == (2 * 10, 5 * 10, 3) and grid.dtype == np.uint8
    assert grid[1, 41, 0] == 0 and grid[11, 41, 0] == 255  # clean column, both rows
    assert grid[1, 11, 0] == 255  # denoised at 0.1 = +1 -> white
    assert to_uint8_hwc(torch.zeros(1, 2, 2)).shape == (2, 2, 3)  # gray -> RGB


def test_rng_state_round_trip():
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3))
    restore_rng_state(state)
    torch.testing.assert_close(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
