"""Visualisation helpers: tiles and PNGs for the hooks and demos. MMEngine's ``Visualizer``
with its ``LocalVisBackend`` / ``TensorboardVisBackend`` draws the hooks' grids."""
from .frames import save_png, tile_row, to_uint8_hwc

__all__ = ['to_uint8_hwc', 'tile_row', 'save_png']
