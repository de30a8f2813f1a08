"""Position embeddings."""
import torch

from ebtvision.models.layers import sincos_2d_position_embedding


def test_sincos_position_embedding():
    table = sincos_2d_position_embedding(16, 4)
    assert table.shape == (16, 16)
    assert table.abs().max() <= 1
    assert torch.unique(table, dim=0).shape[0] == 16  # every position distinct
    # the first quarter encodes the column: equal across rows of the grid
    torch.testing.assert_close(table[0, :4], table[4, :4])
