"""Run a fixed-size image model on images of any size: pad, cut overlapping tiles, blend.

A model trained at ``tile x tile`` pixels sees exactly that size. Smaller images are
mirror-padded up to it; larger ones are cut into tiles that overlap by at least
``overlap`` pixels, and the tiles' outputs are averaged with weights that fall off
linearly towards each tile's borders (no visible seams where a tile ends).
"""
from typing import List, Tuple

import torch

Box = Tuple[int, int]  # (top, left) of a tile


def tile_starts(length: int, tile: int, overlap: int) -> List[int]:
    """Evenly spaced tile offsets covering ``[0, length)``, overlapping >= ``overlap``.

    ``length`` must be at least ``tile`` (pad first).
    """
    if not 0 <= overlap < tile:
        raise ValueError(f'overlap must be in [0, tile={tile}), got {overlap}')
    if length < tile:
        raise ValueError(f'length {length} is smaller than the tile {tile}; pad first')
    if length == tile:
        return [0]
    count = -(-(length - overlap) // (tile - overlap))  # ceil division
    count = max(count, 2)
    last = length - tile
    return [round(index * last / (count - 1)) for index in range(count)]


def symmetric_pad(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Mirror-pad ``(..., H, W)`` at the bottom/right to at least ``(height, width)``.

    Works for any amount of padding (the mirror repeats), unlike ``F.pad``'s reflect.
    """
    def mirror_index(size: int, target: int) -> torch.Tensor:
        index = torch.arange(max(size, target)) % (2 * size)
        return torch.where(index >= size, 2 * size - 1 - index, index)

    rows = mirror_index(image.shape[-2], height).to(image.device)
    cols = mirror_index(image.shape[-1], width).to(image.device)
    return image.index_select(-2, rows).index_select(-1, cols)


def split_tiles(image: torch.Tensor, tile: int,
                overlap: int) -> Tuple[torch.Tensor, List[Box]]:
    """Cut ``(C, H, W)`` (H, W >= tile) into ``(N, C, tile, tile)`` tiles and their boxes."""
    height, width = image.shape[-2:]
    boxes = [(top, left) for top in tile_starts(height, tile, overlap)
             for left in tile_starts(width, tile, overlap)]
    tiles = torch.stack([image[:, top:top + tile, left:left + tile] for top, left in boxes])
    return tiles, boxes


def feather_window(tile: int, ramp: int, device=None) -> torch.Tensor:
    """``(tile, tile)`` blending weights: 1 inside, a linear ramp over ``ramp`` px at edges."""
    position = torch.arange(tile, dtype=torch.float32, device=device) + 0.5
    edge_distance = torch.minimum(position, tile - position)
    profile = (edge_distance / max(ramp, 1)).clamp(max=1.0)
    return profile[:, None] * profile[None, :]


def blend_tiles(tiles: torch.Tensor, boxes: List[Box], height: int, width: int,
                overlap: int) -> torch.Tensor:
    """Put ``(N, C, tile, tile)`` tiles back into one ``(C, height, width)`` image.

    Where tiles overlap, they are averaged with :func:`feather_window` weights; a pixel
    covered by a single tile gets that tile's value exactly.
    """
    channels, tile = tiles.shape[1], tiles.shape[-1]
    weight = feather_window(tile, overlap, tiles.device).to(tiles.dtype)
    total = tiles.new_zeros(channels, height, width)
    norm = tiles.new_zeros(1, height, width)
    for tile_pixels, (top, left) in zip(tiles, boxes):
        total[:, top:top + tile, left:left + tile] += tile_pixels * weight
        norm[:, top:top + tile, left:left + tile] += weight
    return total / norm
