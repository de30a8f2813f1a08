"""Denoising image-quality metrics (PSNR/MSE, SSIM, LPIPS) per noise level.

Each metric reads the denoising data samples produced by ``mode='predict'``
(``gt_img``, ``pred_imgs`` and ``noisy_imgs``, images ``(C, H, W)`` in ``[-1, 1]``)
and reports, for every noise level key ``<k>`` found, the model output's score
``<name>@<k>`` and the noisy input's score ``noisy_<name>@<k>`` (the floor that
denoising must beat). The Evaluator prefixes them with ``denoise/``.

``process`` keeps only per-image floats in ``self.results`` (one dict per sample,
as MMEngine's ``collect_results`` expects), so distributed evaluation gathers a few
numbers per image and ``compute_metrics`` averages them over images. A per-batch
figure (``PSNRMetric``'s ``psnr_batch``) is stored the same way: ``process`` sees one
batch, computes the batch's value and gives it to every image of that batch, so the
average over images is the mean over batches weighted by batch size.
"""
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement
from torch import Tensor

from ebtvision.registry import METRICS
from ..functional import LPIPSScorer, mse, psnr, psnr_batch, ssim, to_uint8_scale

__all__ = ['PSNRMetric', 'SSIMMetric', 'LPIPSMetric']

# (field of the data sample, prefix of the reported key)
_IMAGE_FIELDS: Tuple[Tuple[str, str], ...] = (('pred_imgs', ''), ('noisy_imgs', 'noisy_'))


def _level_sort_key(level: str) -> Tuple[int, float, str]:
    """Sort noise levels numerically when they parse as numbers, else by name."""
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level)


class BaseDenoiseMetric(BaseMetric):
    """Shared per-noise-level bookkeeping of the denoising metrics.

    Subclasses set :attr:`metric_names` and implement :meth:`score`.

    Args:
        quantize: Round the ``[0, 255]`` images to integer levels before scoring,
            as if they had been saved as 8-bit images.
        collect_device: Device used to gather results across ranks.
        prefix: Prefix of the reported keys; ``'denoise'`` if None.
        collect_dir: Directory for gathering results when ``collect_device='cpu'``.
    """

    default_prefix: Optional[str] = 'denoise'
    #: Names returned by :meth:`score`, in reporting order.
    metric_names: Tuple[str, ...] = ()

    def __init__(self,
                 quantize: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.quantize = quantize

    def score(self, pred: Tensor, target: Tensor) -> Dict[str, Tensor]:
        """Score a batch of images.

        Args:
            pred: ``(B, C, H, W)`` images in ``[-1, 1]``.
            target: ``(B, C, H, W)`` ground truth in ``[-1, 1]``.

        Returns:
            ``{name: (B,) tensor}`` for each name in :attr:`metric_names`. A
            per-batch score is returned repeated ``B`` times.
        """
        raise NotImplementedError

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Score every noise level of a batch and store per-image floats.

        Args:
            data_batch: The dataloader batch (unused).
            data_samples: Data samples as dicts (what the Evaluator passes) or
                ``BaseDataElement`` with ``gt_img``, ``pred_imgs`` and/or
                ``noisy_imgs``.

        Raises:
            KeyError: If a sample has no ``gt_img`` or neither ``pred_imgs`` nor
                ``noisy_imgs``.
        """
        samples = []
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            if 'gt_img' not in sample:
                raise KeyError(f'{type(self).__name__} needs `gt_img` in each data sample, '
                               f'got keys {sorted(sample)}.')
            if not sample.get('pred_imgs') and not sample.get('noisy_imgs'):
                raise KeyError(f'{type(self).__name__} needs `pred_imgs` or `noisy_imgs` '
                               f'in each data sample, got keys {sorted(sample)}.')
            samples.append(sample)

        results: List[Dict[str, float]] = [{} for _ in samples]
        for field, tag in _IMAGE_FIELDS:
            # Batch images of the same level and shape together (one LPIPS forward).
            groups: Dict[Tuple[str, tuple, tuple], List[int]] = defaultdict(list)
            for idx, sample in enumerate(samples):
                for level, img in (sample.get(field) or {}).items():
                    key = (str(level), tuple(img.shape), tuple(sample['gt_img'].shape))
                    groups[key].append(idx)
            for (level, _, _), idxs in groups.items():
                pred = torch.stack([self._image(samples[i][field], level) for i in idxs])
                gt = torch.stack([samples[i]['gt_img'] for i in idxs]).to(pred.device)
                scores = self.score(pred.detach(), gt.detach())
                for name, values in scores.items():
                    for idx, value in zip(idxs, values.tolist()):
                        results[idx][f'{tag}{name}@{level}'] = float(value)
        self.results.extend(results)

    @staticmethod
    def _image(images: Dict[Any, Tensor], level: str) -> Tensor:
        """Look up a level whose key may be a number rather than a string."""
        if level in images:
            return images[level]
        return next(img for key, img in images.items() if str(key) == level)

    def compute_metrics(self, results: List[Dict[str, float]]) -> Dict[str, float]:
        """Average the per-image values of every key over the images that have it.

        Args:
            results: Per-sample dicts from :meth:`process`, gathered from all ranks.

        Returns:
            ``{'<name>@<level>': mean, 'noisy_<name>@<level>': mean, ...}``, ordered
            by metric name, output before noisy input, then by noise level.
        """
        sums: Dict[str, float] = defaultdict(float)
        counts: Dict[str, int] = defaultdict(int)
        for result in results:
            for key, value in result.items():
                sums[key] += value
                counts[key] += 1

        order = {name: i for i, name in enumerate(self.metric_names)}

        def sort_key(key: str) -> tuple:
            full_name, level = key.rsplit('@', 1)
            noisy = full_name.startswith('noisy_')
            name = full_name[len('noisy_'):] if noisy else full_name
            return (order.get(name, len(order)), name, noisy, _level_sort_key(level))

        return {key: sums[key] / counts[key] for key in sorted(sums, key=sort_key)}


@METRICS.register_module()
class PSNRMetric(BaseDenoiseMetric):
    """PSNR (dB) and MSE on the ``[0, 255]`` scale, per noise level.

    Reports, for the model output and (``noisy_`` prefix) the noisy input:

    - ``psnr@<k>``: the mean over images of each image's PSNR;
    - ``psnr_batch@<k>``: for each evaluation batch, the PSNR of the batch's mean
      MSE (:func:`~ebtvision.evaluation.functional.psnr_batch`), averaged over
      batches weighted by their number of images. This is how the EBT paper's code
      computes its test PSNR (one value per test batch of 128, averaged by
      Lightning weighted by batch size), so it depends on the batch size and is
      never above ``psnr@<k>`` on the same images (barring the ``max_psnr`` cap);
    - ``mse@<k>``: the mean over images of each image's MSE (the same as the
      size-weighted mean of batch MSEs, since every image has the same number of pixels).

    In distributed evaluation each rank scores its own batches (the dataloader
    batch size per rank), so ``psnr_batch`` is the figure for batches of that
    size; samples that the distributed sampler repeats to even out the ranks
    count in their batch's MSE, but their rows are dropped from the averages.
    Within a batch, images of a different shape from the others form their own
    group.

    Args:
        max_psnr: Cap (dB) applied to each image's PSNR (and each batch's)
            before averaging, so an image identical to its ground truth (PSNR ``+inf``) does not make the
            average infinite. None keeps ``inf``.
        quantize: Round images to integer levels before scoring.
        collect_device: Device used to gather results across ranks.
        prefix: Prefix of the reported keys; ``'denoise'`` if None.
        collect_dir: Directory for gathering results when ``collect_device='cpu'``.
    """

    metric_names = ('psnr', 'psnr_batch', 'mse')

    def __init__(self,
                 max_psnr: Optional[float] = 100.0,
                 quantize: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            quantize=quantize, collect_device=collect_device, prefix=prefix,
            collect_dir=collect_dir)
        self.max_psnr = max_psnr

    def score(self, pred: Tensor, target: Tensor) -> Dict[str, Tensor]:
        """Per-image PSNR, the batch's PSNR (both capped at ``max_psnr``) and
        per-image MSE on the 0-255 scale (images clamped to it)."""
        pred = to_uint8_scale(pred, self.quantize)
        target = to_uint8_scale(target, self.quantize)
        psnr_values = psnr(pred, target, data_range=255.0)
        batch_value = psnr_batch(pred, target, data_range=255.0)
        if self.max_psnr is not None:
            psnr_values = psnr_values.clamp(max=self.max_psnr)
            batch_value = batch_value.clamp(max=self.max_psnr)
        return {'psnr': psnr_values, 'psnr_batch': batch_value.expand(pred.shape[0]),
                'mse': mse(pred, target)}


@METRICS.register_module()
class SSIMMetric(BaseDenoiseMetric):
    """Mean SSIM on the ``[0, 255]`` scale (Gaussian window, sigma 1.5).

    Reports ``ssim@<k>`` and ``noisy_ssim@<k>``, averages of per-image SSIM.

    Args:
        window_size: Taps of the Gaussian window; images must be at least this
            large.
        quantize: Round images to integer levels before scoring.
        collect_device: Device used to gather results across ranks.
        prefix: Prefix of the reported keys; ``'denoise'`` if None.
        collect_dir: Directory for gathering results when ``collect_device='cpu'``.
    """

    metric_names = ('ssim', )

    def __init__(self,
                 window_size: int = 11,
                 quantize: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            quantize=quantize, collect_device=collect_device, prefix=prefix,
            collect_dir=collect_dir)
        self.window_size = window_size

    def score(self, pred: Tensor, target: Tensor) -> Dict[str, Tensor]:
        """Per-image mean SSIM on the 0-255 scale."""
        pred = to_uint8_scale(pred, self.quantize)
        target = to_uint8_scale(target, self.quantize)
        return {'ssim': ssim(pred, target, data_range=255.0, window_size=self.window_size)}


@METRICS.register_module()
class LPIPSMetric(BaseDenoiseMetric):
    """LPIPS distance (lower is better), per noise level.

    Reports ``lpips@<k>`` and ``noisy_lpips@<k>``, averages of per-image LPIPS.
    The network is built when the metric is, from local weights only (see
    :func:`ebtvision.evaluation.functional.build_lpips`); a missing backbone
    checkpoint raises ``FileNotFoundError`` at that point.

    Args:
        net: Backbone, ``'alex'`` (default), ``'vgg'`` or ``'squeeze'``.
        backbone_weights: Local torchvision checkpoint of the backbone, e.g.
            ``'/ckpts/alexnet-owt-7be5be79.pth'``; if None it is looked up in
            ``torch.hub.get_dir()/checkpoints``.
        device: Device that runs the LPIPS network.
        quantize: Round images to 8-bit levels before scoring.
        collect_device: Device used to gather results across ranks.
        prefix: Prefix of the reported keys; ``'denoise'`` if None.
        collect_dir: Directory for gathering results when ``collect_device='cpu'``.
    """

    metric_names = ('lpips', )

    def __init__(self,
                 net: str = 'alex',
                 backbone_weights: Optional[str] = None,
                 device: str = 'cpu',
                 quantize: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            quantize=quantize, collect_device=collect_device, prefix=prefix,
            collect_dir=collect_dir)
        self.scorer = LPIPSScorer(net, backbone_weights).to(device)

    def score(self, pred: Tensor, target: Tensor) -> Dict[str, Tensor]:
        """Per-image LPIPS on ``[-1, 1]`` inputs (clamped, optionally quantized)."""
        # Same clamping/quantization as the other metrics, back on lpips' [-1, 1] scale.
        pred = to_uint8_scale(pred, self.quantize) / 127.5 - 1.0
        target = to_uint8_scale(target, self.quantize) / 127.5 - 1.0
        return {'lpips': self.scorer(pred, target).cpu()}
