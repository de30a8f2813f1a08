"""Turning [-1, 1] image tensors into uint8 tiles, rows and PNG files."""
from typing import Sequence

import cv2
import numpy as np
import torch

from ebtvision.fileio import atomic_write


def to_uint8_hwc(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor in [-1, 1] to an (H, W, 3) uint8 RGB array."""
    img = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    array = img.permute(1, 2, 0).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def tile_row(tiles: Sequence, pad: int = 2) -> np.ndarray:
    """Tiles side by side, each framed by ``pad`` white pixels.

    A tile is a (C, H, W) tensor in [-1, 1] or an already drawn (H, W, 3) uint8 array.
    """
    return np.concatenate([
        np.pad(tile if isinstance(tile, np.ndarray) else to_uint8_hwc(tile),
               ((pad, pad), (pad, pad), (0, 0)), constant_values=255) for tile in tiles
    ], axis=1)


def save_png(rgb: np.ndarray, path: str) -> None:
    """Write an (H, W, 3) uint8 RGB array as a PNG, atomically."""
    ok, encoded = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f'could not encode a {rgb.shape} image as PNG for {path}')
    atomic_write(encoded.tobytes(), path)
