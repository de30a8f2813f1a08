"""Draws how EBTs think: the trajectory step by step, energy heat maps, energy curves."""
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ebtvision.registry import HOOKS
from ebtvision.visualization import (energy_curve_image, energy_heatmap, overlay_heatmap,
                                     save_png, tile_row, to_uint8_hwc)
from ..strategies import full_parameters


def thinking_grid(outcome, clean: Sequence[torch.Tensor], pad: int = 2) -> np.ndarray:
    """Per image: every trajectory step (noisy first) | final + energy map | clean."""
    rows = []
    maps = outcome.energy_maps.detach().float().cpu().numpy()
    low, high = float(maps.min()), float(maps.max())  # one colour scale for the grid
    for index in range(outcome.final.shape[0]):
        steps: List = [step[index] for step in outcome.trajectory]
        overlay = overlay_heatmap(to_uint8_hwc(outcome.final[index]), maps[index], alpha=0.5,
                                  vmin=low, vmax=high)
        rows.append(tile_row(steps + [overlay, clean[index]], pad))
    return np.concatenate(rows, axis=0)


def frame_energy_grid(samples: Sequence, cell: int = 24, pad: int = 2) -> np.ndarray:
    """Per clip: predicted frames (when decoded) over a heat strip of their final energies."""
    energies = [sample.energies.float() for sample in samples]
    low = min(float(e.min()) for e in energies)
    high = max(float(e.max()) for e in energies)
    rows = []
    for sample, energy in zip(samples, energies):
        frames = list(sample.pred_frames) if 'pred_frames' in sample else []
        size = frames[0].shape[-1] if frames else cell
        strip = [energy_heatmap(value.reshape(1, 1).numpy(), (cell, size), low, high)
                 for value in energy]
        if frames:
            rows.append(tile_row(frames[:len(strip)], pad))
        rows.append(tile_row(strip, pad))
    return np.concatenate(rows, axis=0)


@HOOKS.register_module()
class ThinkingVisualizationHook(Hook):
    """Show an EBT's thinking and uncertainty at validation (first batch) and test.

    Denoisers: the first ``max_samples`` images of the batch at noise ``level`` are
    thought through again with their trajectory kept; a grid shows every step, the final
    image with its per-patch energy map overlaid (bright = high energy = the model finds
    the region implausible) and the clean image, and a plot shows energy vs step.
    Next-frame EBTs: predicted frames over a heat strip of their final energies, and
    the energy of every frame vs step for the first clip. Other models are skipped with a
    warning. Images go to the runner's visualizer; at test time also to
    ``<work_dir>/<out_dir>/``.

    Args:
        max_samples: Images / clips drawn per batch.
        level: Noise level drawn for denoisers (``0.2`` or its key ``'0.2'``; one of
            the model's ``eval_noise_levels``); default the first evaluated.
        out_dir: Folder (inside the work dir) for test-time drawings.
    """

    priority = 'LOW'

    def __init__(self, max_samples: int = 4, level: Optional[Union[float, str]] = None,
                 out_dir: str = 'thinking_vis') -> None:
        # Imported here: importing the models (and their dependencies) is the heavy part
        # of ``import ebtvision.engine``.
        from ebtvision.models import noise_level_key
        self.max_samples = max_samples
        self.level = None if level is None else noise_level_key(level)
        self.out_dir = out_dir
        self._warned = False

    def rethink(self, model, samples: Sequence, level: str):
        """Think again from the samples' noisy images at ``level``, keeping the trajectory.

        The predictions hold only final images and energies; the steps in between exist
        only while thinking, so they are recomputed (in eval mode; the thinker enables
        autograd itself, so this also works inside the no-grad val/test loops).
        """
        if level not in samples[0].noisy_imgs:
            raise ValueError(f'ThinkingVisualizationHook: noise level {level!r} was not '
                             f'evaluated; the predictions have {list(samples[0].noisy_imgs)}')
        device = next(model.parameters()).device
        noisy = torch.stack([sample.noisy_imgs[level] for sample in samples]).to(device)
        was_training = model.training
        model.eval()
        try:
            return model.denoise_by_thinking(noisy, energy_maps=True)
        finally:
            model.train(was_training)

    def _draw(self, runner, outputs) -> dict:
        from ebtvision.models import BaseDenoiser, EnergyBasedModel, NextFramePredictor
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        samples = list(outputs)[:self.max_samples]
        is_ebt = isinstance(model, EnergyBasedModel)
        if is_ebt and isinstance(model, BaseDenoiser) and samples and (
                'noisy_imgs' in samples[0]):
            level = self.level or next(iter(samples[0].noisy_imgs))
            with full_parameters(runner.model):  # FSDP: the whole model on every rank
                outcome = self.rethink(model, samples, level)
            curves = outcome.energies.detach().float().cpu().numpy()
            return dict(thinking=thinking_grid(outcome, [s.gt_img for s in samples]),
                        energy_curve=energy_curve_image(
                            curves, [f'image {i}' for i in range(len(curves))],
                            title=f'energy while thinking (noise {level})'))
        if is_ebt and isinstance(model, NextFramePredictor) and samples and (
                'energies' in samples[0]):
            first = samples[0].energy_trajectory.float().t().numpy()  # (T, S + 1)
            return dict(frame_energy=frame_energy_grid(samples),
                        energy_curve=energy_curve_image(
                            first, [f'frame {i + 1}' for i in range(len(first))],
                            title='energy while thinking, per predicted frame (clip 0)'))
        if not self._warned:
            warnings.warn(f'ThinkingVisualizationHook: {type(model).__name__} is not an EBT '
                          'or its predictions carry no energies; nothing to draw, skipping it')
            self._warned = True
        return {}

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if batch_idx != 0:
            return
        for name, image in self._draw(runner, outputs).items():
            runner.visualizer.add_image(f'val_{name}', image, step=runner.iter)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        for name, image in self._draw(runner, outputs).items():
            runner.visualizer.add_image(f'test_{name}', image, step=batch_idx)
            save_png(image, osp.join(runner.work_dir, self.out_dir,
                                     f'{name}_{batch_idx:04d}.png'))
