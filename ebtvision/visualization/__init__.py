"""Visualisation helpers: tiles and PNGs for the hooks and demos, rollout videos and their
energy plots, energy heat maps and curves. MMEngine's ``Visualizer`` with its ``LocalVisBackend`` /
``TensorboardVisBackend`` draws the hooks' grids."""
from .energy import energy_curve_image, energy_heatmap, overlay_heatmap
from .frames import save_png, tile_row, to_uint8_hwc
from .video import (check_video_writer, plot_rollout_curves, read_video_frames, save_video,
                    side_by_side_frames, upscale)

__all__ = [
    'to_uint8_hwc', 'tile_row', 'save_png', 'side_by_side_frames', 'save_video',
    'check_video_writer', 'read_video_frames', 'plot_rollout_curves', 'upscale',
    'energy_heatmap', 'overlay_heatmap', 'energy_curve_image'
]
