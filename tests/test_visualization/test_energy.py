"""Energy heat maps, overlays and energy-vs-step curve images."""
import numpy as np
import pytest

from ebtvision.visualization import energy_curve_image, energy_heatmap, overlay_heatmap


def brightness(rgb: np.ndarray) -> float:
    return float(rgb.astype(np.float64).mean())


def test_heatmap_blocks_and_colour_order():
    energy = np.array([[0.0, 1.0], [2.0, 3.0]])
    heat = energy_heatmap(energy, size=(8, 8))
    assert heat.shape == (8, 8, 3) and heat.dtype == np.uint8
    # Nearest-neighbour: each patch is one uniform 4x4 block.
    assert (heat[:4, :4] == heat[0, 0]).all() and (heat[4:, 4:] == heat[7, 7]).all()
    # Higher energy, brighter colour (the inferno map rises in brightness).
    blocks = [heat[0, 0], heat[0, 7], heat[7, 0], heat[7, 7]]
    assert [brightness(b) for b in blocks] == sorted(brightness(b) for b in blocks)
    # A fixed colour range: the same value gets the same colour in two maps.
    other = energy_heatmap(np.array([[1.0, 5.0]]), vmin=0.0, vmax=3.0)
    np.testing.assert_array_equal(other[0, 0], heat[0, 7])
    assert (energy_heatmap(np.ones((2, 3))) == energy_heatmap(np.ones((2, 3)))[0, 0]).all()
    with pytest.raises(ValueError, match='2-D'):
        energy_heatmap(np.ones(4))


def test_overlay_blends_with_the_image():
    image = np.full((6, 9, 3), 200, np.uint8)
    energy = np.array([[0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(overlay_heatmap(image, energy, alpha=0.0), image)
    full = overlay_heatmap(image, energy, alpha=1.0)
    np.testing.assert_array_equal(full, energy_heatmap(energy, (6, 9)))
    half = overlay_heatmap(image, energy, alpha=0.5).astype(int)
    expected = (image.astype(int) + full.astype(int)) / 2
    assert np.abs(half - expected).max() <= 1
    assert overlay_heatmap(image[:, :, 0], energy).shape == (6, 9, 3)  # gray input
    with pytest.raises(ValueError, match='uint8'):
        overlay_heatmap(image.astype(np.float32), energy)


def test_curve_image_draws_the_data():
    falling = energy_curve_image(np.array([1.0, 0.5, 0.2]), size=(200, 300))
    assert falling.shape == (200, 300, 3) and falling.dtype == np.uint8
    assert len(np.unique(falling.reshape(-1, 3), axis=0)) > 10  # not blank
    rising = energy_curve_image(np.array([0.2, 0.5, 1.0]), size=(200, 300))
    assert not np.array_equal(falling, rising)
    several = energy_curve_image(np.array([[1.0, 0.5], [2.0, 1.0]]), labels=['a', 'b'])
    assert several.ndim == 3
    with pytest.raises(ValueError, match='labels'):
        energy_curve_image(np.ones((2, 3)), labels=['only one'])
