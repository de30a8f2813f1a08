"""Denoise user images with a trained EBT (or the DiT baseline): the API behind the demo.

    from ebtvision.apis import DenoiseInferencer
    inferencer = DenoiseInferencer('configs/quickstart/ebt_denoise_skimage.py',
                                   'work_dirs/ebt_denoise_skimage/iter_600.pth')
    result = inferencer('photo.png', noise_level=0.1, num_steps=2)
    result.denoised, result.trajectory, result.energies, result.psnr

Any size: the model works at its training size (``tile_size``, e.g. 64 px). With
``large_images='tile'`` (default) an image is processed at its own resolution, cut into
overlapping tiles that are denoised as one batch and blended back
(:mod:`ebtvision.apis.tiling`); with ``'resize'`` it is first downscaled so that its
longer side equals the tile size, and everything (noisy, denoised, metrics) is
reported at that size. Images smaller than a tile are mirror-padded and cropped back.
"""
import time
from dataclasses import dataclass
from typing import List, Optional, Union

import numpy as np
import torch
from tqdm import tqdm

from ebtvision.datasets.transforms.processing import imresize
from ebtvision.evaluation.functional import psnr, ssim
from ebtvision.models.thinking.options import noise_level as check_noise_level
from .base_inferencer import BaseInferencer
from .image_io import DEFAULT_MAX_PIXELS, ImageInput, ImageInputError, load_image
from .tiling import blend_tiles, split_tiles, symmetric_pad

LARGE_IMAGE_MODES = ('tile', 'resize')


@dataclass
class DenoiseResult:
    """What one denoising request produced.

    Images are float32 in ``[0, 1]``, ``(H, W, 3)`` RGB, or ``(H, W)`` when the input was
    grayscale. ``H, W`` is the input's size (``'tile'``) or the downscaled working size
    (``'resize'``).

    Attributes:
        denoised: The model's output.
        noisy: What the model saw (the input, plus synthetic noise if any was added).
        clean: The reference for the metrics: the input when noise was added, the
            ``reference`` image when given, else ``None``.
        trajectory: ``trajectory[k]`` is the image after ``k`` steps; ``trajectory[0]``
            is the noisy start. For an EBT one entry per thinking step; for the DiT only
            the start and the result.
        energies: EBT only: ``energies[k]`` is the energy of ``trajectory[k]`` (mean over
            tiles); ``None`` for the DiT.
        psnr, ssim: Of ``denoised`` against ``clean`` (0-255 scale, as the paper);
            ``None`` without a reference.
        noisy_psnr, noisy_ssim: The same for ``noisy`` (the floor to beat).
        noise_level: The synthetic noise level, or ``None`` (input used as is).
        num_steps: Thinking steps (EBT) or reverse steps (DiT) run.
        num_tiles: Tiles the image was cut into.
        seconds: Wall time of the model part of the request.
        bit_depth: Bits per sample of the input (8, 16, or 32 for floats), to write
            results back at the input's precision.
        num_candidates: Candidates per tile (self-verification).
        steps_used: EBT: mean steps the kept candidates took (below ``num_steps`` when
            adaptive stopping ended them early).
        energy_map: EBT: ``(H, W)`` final energy of the patch each pixel is in (the
            model's uncertainty; high = the model finds that region implausible).
    """
    denoised: np.ndarray
    noisy: np.ndarray
    clean: Optional[np.ndarray]
    trajectory: List[np.ndarray]
    energies: Optional[List[float]]
    psnr: Optional[float] = None
    ssim: Optional[float] = None
    noisy_psnr: Optional[float] = None
    noisy_ssim: Optional[float] = None
    noise_level: Optional[float] = None
    num_steps: int = 0
    num_tiles: int = 1
    seconds: float = 0.0
    bit_depth: int = 8
    num_candidates: int = 1
    steps_used: Optional[float] = None
    energy_map: Optional[np.ndarray] = None


def image_quality(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """PSNR and SSIM of ``(C, H, W)`` images in ``[-1, 1]`` on the 0-255 scale.

    SSIM uses the standard 11-px window, shrunk to the image on images smaller than
    that (``None`` below 3 px). PSNR of identical images is capped at 100 dB.
    """
    pred255, target255 = (pred + 1) * 127.5, (target + 1) * 127.5
    side = min(pred.shape[-2:])
    window = min(11, side if side % 2 else side - 1)  # the largest odd window that fits
    quality = dict(psnr=float(psnr(pred255, target255).clamp(max=100.0)), ssim=None)
    if window >= 3:
        quality['ssim'] = float(ssim(pred255, target255, window_size=window))
    return quality


class DenoiseInferencer(BaseInferencer):
    """Builds a denoiser from a config and a checkpoint and denoises single images.

    Args:
        config: Config file (or :class:`Config`) of an ``EBTDenoiser`` or ``DiTDenoiser``.
        checkpoint: Checkpoint of that model, loaded weights-only; ``None`` keeps random
            weights (smoke tests only).
        device: ``'cpu'`` or ``'cuda[:N]'``.
        large_images: ``'tile'`` or ``'resize'`` (see the module docstring).
        tile_overlap: Minimum overlap of neighbouring tiles in pixels (default a quarter
            of the tile).
        batch_size: Tiles per forward pass (bounds memory on large images).
        max_pixels: Refuse larger inputs (``None``: no limit).
        cfg_options: Overrides merged into the config.

    Raises:
        ModelLoadError: See :func:`init_model`; also when the config is not a denoiser.
    """

    TASK = 'an image denoiser'
    MODEL_TYPES = ('EBTDenoiser', 'DiTDenoiser')
    BASELINE_OPTIONS = ('num_steps', )  # the DiT's reverse steps

    def __init__(self,
                 config,
                 checkpoint: Optional[str],
                 device: Union[str, torch.device] = 'cpu',
                 large_images: str = 'tile',
                 tile_overlap: Optional[int] = None,
                 batch_size: int = 16,
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                 cfg_options: Optional[dict] = None) -> None:
        if large_images not in LARGE_IMAGE_MODES:
            raise ValueError(f'large_images must be one of {LARGE_IMAGE_MODES}, '
                             f'got {large_images!r}')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        super().__init__(config, checkpoint, device, cfg_options)
        self.tile_size = int(self.model.backbone.img_size)
        self.tile_overlap = self.tile_size // 4 if tile_overlap is None else int(tile_overlap)
        if not 0 <= self.tile_overlap < self.tile_size:
            raise ValueError(f'tile_overlap must be in [0, {self.tile_size}), '
                             f'got {self.tile_overlap}')
        self.large_images = large_images
        self.batch_size = batch_size
        self.max_pixels = max_pixels

    @classmethod
    def task_class(cls) -> type:
        from ebtvision.models import BaseDenoiser
        return BaseDenoiser

    def ebt_only_message(self, asked) -> str:
        return ('alpha, num_candidates and tolerance apply to EBTs; the DiT has no energy '
                'to descend or compare')

    @property
    def train_noise_level(self) -> float:
        return float(self.model.train_noise_level)

    # ------------------------------------------------------------------ inputs
    def _working_image(self, image: ImageInput):
        """The input as a ``(3, H, W)`` tensor in [-1, 1] at the working size."""
        loaded = load_image(image, self.max_pixels)
        pixels = loaded.pixels
        if self.large_images == 'resize' and max(pixels.shape[:2]) > self.tile_size:
            scale = self.tile_size / max(pixels.shape[:2])
            size = (max(1, round(pixels.shape[0] * scale)), max(1, round(pixels.shape[1] * scale)))
            pixels = imresize(pixels, size)
        tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
        return tensor.to(self.device, torch.float32) * 2 - 1, loaded

    def _add_noise(self, clean: torch.Tensor, noise_level: float, grayscale: bool,
                   seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(seed))
        # A gray image gets gray noise: independent noise per copied channel would let
        # the model average it away, which is not denoising the gray image.
        channels = 1 if grayscale else clean.shape[0]
        noise = torch.randn((channels, ) + tuple(clean.shape[1:]), generator=generator)
        noise = noise.to(clean.device).expand_as(clean)
        # As evaluation noises (the model's stretch_eval_noise), so results match its scores.
        return self.model.noise_for_eval(clean[None], noise_level, noise[None])[0]

    # ------------------------------------------------------------------ model
    def _run_tiles(self, tiles: torch.Tensor, noise_level: Optional[float], num_steps: int,
                   alpha: Optional[float], num_candidates: int, tolerance: Optional[float],
                   seed: int, progress: bool) -> dict:
        """Denoise tiles in batches.

        Returns ``steps``: per step the tiles ``(N, C, t, t)``; for EBTs also
        ``energies`` ``(N, S + 1)``, ``steps_used`` ``(N,)`` and ``energy_maps``
        ``(N, 1, t, t)`` (patch energies spread over their pixels).
        """
        parts = []
        level = self.train_noise_level if noise_level is None else noise_level
        generator = torch.Generator().manual_seed(int(seed) + 1)  # apart from the noise's
        batches = range(0, tiles.shape[0], self.batch_size)
        for start in tqdm(batches, desc='denoising tiles', disable=not progress):
            batch = tiles[start:start + self.batch_size]
            if not self.is_ebt:
                denoised, _ = self.model.denoise(batch, level, num_steps=num_steps)
                parts.append(dict(steps=[batch, denoised]))
                continue
            outcome = self.model.denoise_by_thinking(
                batch, num_steps=num_steps, alpha=alpha, num_candidates=num_candidates,
                tolerance=tolerance, generator=generator, energy_maps=True)
            maps = torch.nn.functional.interpolate(
                outcome.energy_maps[:, None], size=batch.shape[-2:], mode='nearest')
            parts.append(dict(
                steps=[batch] + [step.clamp(-1, 1) for step in outcome.trajectory[1:]],
                energies=outcome.energies, steps_used=outcome.steps_used, energy_maps=maps))
        merged = dict(steps=[torch.cat(step) for step in zip(*(p['steps'] for p in parts))])
        if self.is_ebt:
            for key in ('energies', 'steps_used', 'energy_maps'):
                merged[key] = torch.cat([p[key] for p in parts])
        return merged

    # ------------------------------------------------------------------ API
    def __call__(self,
                 image: ImageInput,
                 noise_level: Optional[float] = 0.1,
                 num_steps: Optional[int] = None,
                 alpha: Optional[float] = None,
                 num_candidates: int = 1,
                 tolerance: Optional[float] = None,
                 seed: int = 0,
                 reference: Optional[ImageInput] = None,
                 progress: bool = False) -> DenoiseResult:
        """Denoise one image.

        Args:
            image: File path, numpy array (RGB(A) / gray, uint8 / uint16 / float in
                [0, 1]) or PIL image, of any size.
            noise_level: Add DDPM noise at this level first (0.1 = the training level
                of the quick-start, t = 99 of 1000) and measure against the input;
                ``None`` treats the input as already noisy.
            num_steps: Thinking steps of an EBT (more than trained = thinking longer) or
                reverse steps of the DiT; default: the config's.
            alpha: EBT step size override.
            num_candidates: EBT self-verification: M candidates per tile (the first
                starts from the noisy image, the others from it plus
                ``test_cfg.candidate_noise``), the lowest final energy is kept.
            tolerance: EBT adaptive compute: a candidate stops once its energy changes
                by less than this fraction per step; ``num_steps`` is then the budget.
            seed: Seed of the synthetic noise (same seed, same noise).
            reference: Clean image to measure against when ``noise_level`` is ``None``
                (same size as ``image``).
            progress: Show a progress bar over tile batches.

        Raises:
            ImageInputError: A bad image (see :func:`load_image`) or reference.
            ValueError: A bad noise level or step count.
        """
        options = self.validate_thinking(num_steps, alpha, num_candidates, tolerance)
        if noise_level is not None:
            noise_level = check_noise_level('noise_level', noise_level)
        self.refuse_ebt_only(options)
        num_steps, alpha, num_candidates, tolerance = (
            options['num_steps'], options['alpha'], options['num_candidates'],
            options['tolerance'])
        if noise_level is not None and reference is not None:
            raise ValueError('reference is for inputs that are already noisy '
                             '(noise_level=None); with synthetic noise the input is the '
                             'reference')
        num_steps = self.default_steps if num_steps is None else num_steps
        start_time = time.perf_counter()
        clean, loaded = self._working_image(image)
        if noise_level is None:
            noisy = clean
            clean = None
            if reference is not None:
                clean, _ = self._working_image(reference)
                if clean.shape != noisy.shape:
                    raise ImageInputError(
                        f'the reference ({clean.shape[2]}x{clean.shape[1]}) and the image '
                        f'({noisy.shape[2]}x{noisy.shape[1]}) differ in size')
        else:
            noisy = self._add_noise(clean, float(noise_level), loaded.grayscale, seed)

        height, width = noisy.shape[-2:]
        padded = symmetric_pad(noisy, max(height, self.tile_size), max(width, self.tile_size))
        tiles, boxes = split_tiles(padded, self.tile_size, self.tile_overlap)
        self.model.eval()
        outputs = self._run_tiles(tiles, noise_level, num_steps, alpha, num_candidates,
                                  tolerance, seed, progress)

        def stitch(stacked: torch.Tensor) -> torch.Tensor:
            return blend_tiles(stacked, boxes, padded.shape[-2], padded.shape[-1],
                               self.tile_overlap)[:, :height, :width]

        images = [stitch(step) for step in outputs['steps']]
        images[0] = noisy
        if loaded.grayscale:  # hand gray back as gray
            images = [img.mean(0, keepdim=True).expand_as(img) for img in images]
        denoised = images[-1].clamp(-1, 1)
        seconds = time.perf_counter() - start_time

        def to_numpy(img: torch.Tensor) -> np.ndarray:
            array = ((img.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()
            return np.ascontiguousarray(array[:, :, 0] if loaded.grayscale else array,
                                        dtype=np.float32)

        result = DenoiseResult(
            denoised=to_numpy(denoised), noisy=to_numpy(noisy),
            clean=None if clean is None else to_numpy(clean),
            trajectory=[to_numpy(img) for img in images], energies=None,
            noise_level=None if noise_level is None else float(noise_level),
            num_steps=num_steps, num_tiles=len(boxes), seconds=seconds,
            bit_depth=loaded.bit_depth, num_candidates=num_candidates if self.is_ebt else 1)
        if self.is_ebt:
            result.energies = [float(e) for e in outputs['energies'].mean(0)]
            result.steps_used = float(outputs['steps_used'].float().mean())
            result.energy_map = stitch(outputs['energy_maps'])[0].cpu().numpy()
        if clean is not None:
            denoised_quality = image_quality(denoised, clean)
            noisy_quality = image_quality(noisy.clamp(-1, 1), clean)
            result.psnr, result.ssim = denoised_quality['psnr'], denoised_quality['ssim']
            result.noisy_psnr, result.noisy_ssim = noisy_quality['psnr'], noisy_quality['ssim']
        return result
