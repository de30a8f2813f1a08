"""Saves noisy / denoised / clean image grids while training and testing."""
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ebtvision.registry import HOOKS
from ebtvision.visualization import save_png, tile_row
from ..strategies import full_parameters


def denoise_grid(samples: Sequence, max_samples: int = 4, pad: int = 2) -> np.ndarray:
    """One row per sample: for each noise level noisy | denoised, then the clean image."""
    rows = []
    for sample in list(samples)[:max_samples]:
        tiles = []
        for key in sample.pred_imgs:
            tiles += [sample.noisy_imgs[key], sample.pred_imgs[key]]
        tiles.append(sample.gt_img)
        rows.append(tile_row(tiles, pad))
    return np.concatenate(rows, axis=0)


@HOOKS.register_module()
class DenoiseVisualizationHook(Hook):
    """Draw denoising grids: columns ``noisy@level | denoised@level ... | clean``.

    Grids go through the runner's visualizer, so they land in every configured vis
    backend (``LocalVisBackend`` writes PNGs under the work dir; add
    ``TensorboardVisBackend`` to ``visualizer.vis_backends`` for TensorBoard). At test
    time every batch is also written to ``<work_dir>/<out_dir>/`` as PNG.

    Args:
        interval: Draw from the current training batch every ``interval`` iterations
            (0 disables training grids).
        max_samples: Rows per grid.
        out_dir: Folder (inside the work dir) for test-time grids.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 500, max_samples: int = 4,
                 out_dir: str = 'denoise_vis') -> None:
        self.interval = interval
        self.max_samples = max_samples
        self.out_dir = out_dir

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs=None) -> None:
        if not self.interval or not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        subset = {key: value[:self.max_samples] for key, value in data_batch.items()}
        was_training = model.training
        model.eval()
        # Under FSDP the module's own parameters are shards: gather them (every rank runs this).
        with torch.no_grad(), full_parameters(runner.model):
            samples = model.test_step(subset)
        model.train(was_training)
        runner.visualizer.add_image('train_denoise', denoise_grid(samples, self.max_samples),
                                    step=runner.iter + 1)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if batch_idx == 0:
            runner.visualizer.add_image('val_denoise', denoise_grid(outputs, self.max_samples),
                                        step=runner.iter)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        grid = denoise_grid(outputs, self.max_samples)
        runner.visualizer.add_image('test_denoise', grid, step=batch_idx)
        save_png(grid, osp.join(runner.work_dir, self.out_dir, f'batch_{batch_idx:04d}.png'))
