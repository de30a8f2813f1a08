"""ThinkingVisualizationHook on a tiny EBT denoiser, a next-frame EBT and a DiT."""
import os.path as osp
from types import SimpleNamespace

import warnings

import cv2
import numpy as np
import pytest
import torch
from conftest import write_denoiser

from ebtvision.apis import init_model
from ebtvision.engine import ThinkingVisualizationHook
from ebtvision.models import EBTNextFrame
from ebtvision.structures import DenoiseDataSample, VideoDataSample


class RecordingVisualizer:
    def __init__(self):
        self.images = {}

    def add_image(self, name, image, step=0):
        self.images[name] = image


def fake_runner(model, work_dir):
    return SimpleNamespace(model=model, visualizer=RecordingVisualizer(), work_dir=str(work_dir),
                           iter=7)


def predictions(model, count=3):
    x = torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    samples = [DenoiseDataSample(metainfo=dict(sample_idx=i)) for i in range(count)]
    with torch.no_grad():
        return model.predict(x, samples)


def test_denoiser_trajectory_grid_and_energy_curve(tmp_path):
    model = init_model(*write_denoiser(tmp_path, 'ebt'))  # 2 thinking steps, 16 px
    model.eval_noise_levels = [0.1, 0.2]
    outputs = predictions(model)
    modes = []  # backbone.training at every energy evaluation of the re-run
    model.backbone.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    model.train()  # e.g. validation called from a training loop that left it in train mode
    runner = fake_runner(model, tmp_path)
    hook = ThinkingVisualizationHook(max_samples=2, level=0.2)
    hook.after_val_iter(runner, 0, outputs=outputs)
    assert modes and not any(modes) and model.training  # thought in eval mode, then restored
    grid = runner.visualizer.images['val_thinking']
    # 2 rows; per row noisy + 2 steps + overlay + clean, each 16 px framed by 2 px.
    assert grid.shape == (2 * 20, 5 * 20, 3)
    assert runner.visualizer.images['val_energy_curve'].ndim == 3
    later = fake_runner(model, tmp_path)
    hook.after_val_iter(later, 1, outputs=outputs)
    assert later.visualizer.images == {}  # only the first validation batch is drawn
    with torch.no_grad():  # as in MMEngine's TestLoop
        hook.after_test_iter(runner, 3, outputs=outputs)
    written = cv2.imread(osp.join(tmp_path, 'thinking_vis', 'thinking_0003.png'))
    assert written.shape == grid.shape
    np.testing.assert_array_equal(written[..., ::-1], runner.visualizer.images['test_thinking'])
    assert osp.isfile(osp.join(tmp_path, 'thinking_vis', 'energy_curve_0003.png'))
    # The overlay column differs from the plain final image (the heat map is drawn on it).
    final_col, overlay_col = grid[2:18, 2 * 20 + 2:2 * 20 + 18], grid[2:18, 3 * 20 + 2:3 * 20 + 18]
    assert (final_col != overlay_col).any()
    with pytest.raises(ValueError, match='0.3'):
        ThinkingVisualizationHook(level=0.3).after_val_iter(runner, 0, outputs=outputs)


def test_rethinking_reproduces_the_predictions(tmp_path):
    model = init_model(*write_denoiser(tmp_path, 'ebt'))
    outputs = predictions(model, 2)
    level = next(iter(outputs[0].noisy_imgs))
    with torch.no_grad():
        outcome = ThinkingVisualizationHook().rethink(model, outputs, level)
    steps = int(outputs[0].steps_used[level])
    assert len(outcome.trajectory) == steps + 1 == outcome.energies.shape[1]
    torch.testing.assert_close(outcome.trajectory[0],
                               torch.stack([s.noisy_imgs[level] for s in outputs]))
    torch.testing.assert_close(outcome.energies, torch.stack([s.energies[level] for s in outputs]))
    torch.testing.assert_close(outcome.energy_maps,
                               torch.stack([s.energy_maps[level] for s in outputs]))
    torch.testing.assert_close(outcome.final.clamp(-1, 1),
                               torch.stack([s.pred_imgs[level] for s in outputs]))


def test_next_frame_energies_are_drawn():
    torch.manual_seed(0)
    model = EBTNextFrame(
        backbone=dict(type='CausalEBT', arch=dict(depth=1, num_heads=2, embed_dims=16),
                      max_steps=2), head=dict(type='NextFrameHead'), latent_shape=(3, 2, 2),
        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=0.5)).eval()
    latents = torch.randn(2, 5, 3, 2, 2)
    samples = [VideoDataSample(metainfo=dict(input_kind='latents', sample_idx=i))
               for i in range(2)]
    with torch.no_grad():
        outputs = model.predict(latents, samples)
    runner = fake_runner(model, '.')
    ThinkingVisualizationHook().after_val_iter(runner, 0, outputs=outputs)
    strip = runner.visualizer.images['val_frame_energy']
    assert strip.shape == (2 * (24 + 4), 4 * (24 + 4), 3)  # 2 clips x 4 predicted frames
    assert runner.visualizer.images['val_energy_curve'].ndim == 3
    # Cells share one colour scale: the highest-energy frame is the brightest cell.
    energies = torch.stack([sample.energies for sample in outputs])
    cells = strip[2::28, 2::28].reshape(8, 3).astype(float).mean(axis=1)
    assert cells.argmax() == energies.flatten().argmax() and cells.argmin() == energies.argmin()
    # Decoded frames are drawn above their energy strip.
    for sample in outputs:
        sample.pred_frames = torch.rand(4, 3, 8, 8) * 2 - 1
    runner = fake_runner(model, '.')
    ThinkingVisualizationHook(max_samples=1).after_val_iter(runner, 0, outputs=outputs)
    assert runner.visualizer.images['val_frame_energy'].shape == (12 + 28, 4 * 12, 3)


def test_models_without_energies_are_skipped_with_a_warning(tmp_path):
    model = init_model(*write_denoiser(tmp_path, 'dit'))
    runner = fake_runner(model, tmp_path)
    hook = ThinkingVisualizationHook()
    outputs = predictions(model, 1)
    with pytest.warns(UserWarning, match='not an EBT'):
        hook.after_val_iter(runner, 0, outputs=outputs)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # warned once, not at every validation
        hook.after_test_iter(runner, 0, outputs=outputs)
    assert runner.visualizer.images == {}
    assert not osp.exists(osp.join(tmp_path, 'thinking_vis'))
