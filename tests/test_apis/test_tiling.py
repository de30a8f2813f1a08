"""Tiling: tile placement, mirror padding, exact reconstruction and feathered blending."""
import numpy as np
import pytest
import torch

from ebtvision.apis.tiling import (blend_tiles, feather_window, split_tiles, symmetric_pad,
                                   tile_starts)


@pytest.mark.parametrize('length,tile,overlap', [(16, 16, 4), (40, 16, 4), (23, 16, 0),
                                                 (100, 16, 8), (17, 16, 15)])
def test_tile_starts_cover_with_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    assert all(b > a for a, b in zip(starts, starts[1:]))
    assert all(a + tile - b >= overlap for a, b in zip(starts, starts[1:]))


def test_tile_starts_errors():
    with pytest.raises(ValueError, match='overlap'):
        tile_starts(40, 16, 16)
    with pytest.raises(ValueError, match='overlap'):
        tile_starts(40, 16, -1)
    with pytest.raises(ValueError, match='pad first'):
        tile_starts(10, 16, 4)


def test_symmetric_pad_mirrors_any_amount():
    image = torch.arange(12.0).reshape(1, 3, 4)
    padded = symmetric_pad(image, 5, 6)
    expected = np.pad(image.numpy(), ((0, 0), (0, 2), (0, 2)), mode='symmetric')
    np.testing.assert_array_equal(padded.numpy(), expected)
    far = symmetric_pad(image, 10, 4)  # more padding than the image is tall
    np.testing.assert_array_equal(far.numpy(),
                                  np.pad(image.numpy(), ((0, 0), (0, 7), (0, 0)), 'symmetric'))
    assert torch.equal(symmetric_pad(image, 2, 2), image)
    assert symmetric_pad(torch.zeros(2, 3, 4, 5), 8, 8).shape == (2, 3, 8, 8)


@pytest.mark.parametrize('size', [(16, 16), (40, 23), (100, 64)])
@pytest.mark.parametrize('overlap', [0, 4, 8])
def test_split_then_blend_is_exact(size, overlap):
    image = torch.rand(3, *size, generator=torch.Generator().manual_seed(0))
    tiles, boxes = split_tiles(image, 16, overlap)
    assert tiles.shape[1:] == (3, 16, 16) and len(boxes) == len(tiles)
    torch.testing.assert_close(blend_tiles(tiles, boxes, *size, overlap), image, atol=1e-6,
                               rtol=0)


def test_blending_weights_tiles_by_their_distance_to_the_border():
    tiles, boxes = split_tiles(torch.zeros(1, 16, 28), 16, 4)  # starts 0 and 12
    values = torch.tensor([1.0, 3.0])
    blended = blend_tiles(values[:, None, None, None].expand_as(tiles).clone(), boxes, 16, 28, 4)
    assert (blended[:, :, :12] == 1).all() and (blended[:, :, 16:] == 3).all()
    overlap = blended[0, 8, 12:16]
    assert ((overlap > 1) & (overlap < 3)).all() and (overlap.diff() > 0).all()


def test_feather_window_shape():
    window = feather_window(16, 4)
    assert window.shape == (16, 16) and window.max() == 1 and (window > 0).all()
    torch.testing.assert_close(window, window.flip(0))
    torch.testing.assert_close(window, window.t())
    assert window[8, 8] == 1 and window[0, 0] < window[1, 1]
