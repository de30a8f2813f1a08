"""Saves real-vs-predicted frame strips of next-frame predictors at validation and test."""
import os.path as osp
from typing import Sequence

import numpy as np
from mmengine.hooks import Hook

from ebtvision.registry import HOOKS
from ebtvision.visualization import save_png, tile_row


def next_frame_grid(samples: Sequence, max_samples: int = 2, max_frames: int = 8,
                    pad: int = 2) -> np.ndarray:
    """Per sample two rows: real frames 1..n over the predicted frames 1..n."""
    rows = []
    for sample in list(samples)[:max_samples]:
        count = min(max_frames, len(sample.pred_frames))
        rows.append(tile_row(list(sample.gt_frames[1:count + 1]), pad))
        rows.append(tile_row(list(sample.pred_frames[:count]), pad))
    return np.concatenate(rows, axis=0)


@HOOKS.register_module()
class NextFrameVisualizationHook(Hook):
    """Draw strips of real (top) and predicted (bottom) next frames.

    Needs decoded frames: the model's ``test_cfg.decode`` must be on (it is for the
    pixel-patch quick-starts; with the SD VAE each predicted frame costs a decode).
    Grids go through the runner's visualizer (PNGs under the work dir, TensorBoard when
    configured); at test time every batch is also written to ``<work_dir>/<out_dir>/``.

    Args:
        max_samples: Clips per grid.
        max_frames: Frames per strip.
        out_dir: Folder (inside the work dir) for test-time grids.
    """

    priority = 'LOW'

    def __init__(self, max_samples: int = 2, max_frames: int = 8,
                 out_dir: str = 'next_frame_vis') -> None:
        self.max_samples = max_samples
        self.max_frames = max_frames
        self.out_dir = out_dir

    def _grid(self, outputs):
        if not outputs or 'pred_frames' not in outputs[0]:
            return None
        return next_frame_grid(outputs, self.max_samples, self.max_frames)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        grid = self._grid(outputs) if batch_idx == 0 else None
        if grid is not None:
            runner.visualizer.add_image('val_next_frame', grid, step=runner.iter)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        grid = self._grid(outputs)
        if grid is not None:
            runner.visualizer.add_image('test_next_frame', grid, step=batch_idx)
            save_png(grid, osp.join(runner.work_dir, self.out_dir, f'batch_{batch_idx:04d}.png'))
