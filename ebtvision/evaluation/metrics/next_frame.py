"""Next-frame prediction metrics: latent smooth-L1 / MSE per frame, pixel PSNR.

Reads the video data samples produced by ``mode='predict'`` (``gt_latents``,
``pred_latents``, optionally ``pred_frames`` / ``gt_frames`` and ``energies``) and
reports, averaged over every real (non-padded) predicted frame of every clip:

- ``smooth_l1`` and ``mse`` between predicted and true next latents (the paper's video
  metric is the smooth-L1, beta 1);
- ``copy_last_smooth_l1`` / ``copy_last_mse``: the baseline that repeats the last real
  frame, the floor a model must beat;
- ``psnr`` (dB, 0-255 scale) of decoded predictions when the model decodes, and
  ``energy``, the mean final energy, for EBTs;
- with ``per_frame=True`` also ``smooth_l1@<i>`` for each predicted frame position i
  (1 = the frame after the first real one), to see how context length helps.
"""
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from ebtvision.registry import METRICS
from ..functional import psnr, to_uint8_scale


def _frame_errors(pred: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per-frame smooth-L1 (beta 1) and MSE of (T, ...) latents -> {name: (T,)}."""
    diff = (pred.float() - target.float()).flatten(1)
    absolute = diff.abs()
    smooth = torch.where(absolute < 1.0, 0.5 * diff.pow(2), absolute - 0.5)
    return dict(smooth_l1=smooth.mean(1), mse=diff.pow(2).mean(1))


@METRICS.register_module()
class NextFrameMetric(BaseMetric):
    """Latent and pixel errors of next-frame predictions (see the module docstring).

    Args:
        per_frame: Also report the smooth-L1 of each predicted frame position.
        max_psnr: Cap (dB) of each frame's PSNR before averaging (identical frames).
        collect_device: Device used to gather results across ranks.
        prefix: Prefix of the reported keys; ``'nextframe'`` if None.
        collect_dir: Directory for gathering results when ``collect_device='cpu'``.
    """

    default_prefix: Optional[str] = 'nextframe'

    def __init__(self, per_frame: bool = False, max_psnr: float = 100.0,
                 collect_device: str = 'cpu', prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.per_frame = per_frame
        self.max_psnr = max_psnr

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store, per clip, the sum of each quantity over its real predicted frames."""
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            for key in ('gt_latents', 'pred_latents'):
                if key not in sample:
                    raise KeyError(f'NextFrameMetric needs `{key}` in each data sample, got '
                                   f'keys {sorted(sample)}')
            gt, pred = sample['gt_latents'], sample['pred_latents']
            frames = pred.shape[0]
            valid = max(frames - int(sample.get('num_padded', 0)), 0)
            result: Dict[str, float] = defaultdict(float)
            result['frames'] = valid
            if valid == 0:
                self.results.append(dict(result))
                continue
            target = gt[1:valid + 1]
            values = {name: value for name, value in _frame_errors(pred[:valid], target).items()}
            values.update({f'copy_last_{name}': value for name, value in
                           _frame_errors(gt[:valid], target).items()})
            if 'pred_frames' in sample and 'gt_frames' in sample:
                gt_pixels = to_uint8_scale(sample['gt_frames'][:valid + 1].float())
                values['psnr'] = psnr(to_uint8_scale(sample['pred_frames'][:valid].float()),
                                      gt_pixels[1:]).clamp(max=self.max_psnr)
                values['copy_last_psnr'] = psnr(gt_pixels[:-1], gt_pixels[1:]).clamp(
                    max=self.max_psnr)
            if 'energies' in sample:
                values['energy'] = sample['energies'][:valid].float()
            for name, per_frame in values.items():
                result[name] = float(per_frame.sum())
                result[f'{name}#count'] = int(per_frame.numel())
            if self.per_frame:
                for index, value in enumerate(values['smooth_l1'].tolist()):
                    result[f'smooth_l1@{index + 1}'] = value
                    result[f'smooth_l1@{index + 1}#count'] = 1
            self.results.append(dict(result))

    def compute_metrics(self, results: List[Dict[str, float]]) -> Dict[str, float]:
        """Frame-weighted means over all clips (every real predicted frame counts once)."""
        sums: Dict[str, float] = defaultdict(float)
        counts: Dict[str, int] = defaultdict(int)
        for result in results:
            for key, value in result.items():
                if key.endswith('#count') or key == 'frames':
                    continue
                sums[key] += value
                counts[key] += int(result[f'{key}#count'])
        metrics = {key: sums[key] / counts[key] for key in sums if counts[key]}
        order = ['smooth_l1', 'mse', 'psnr', 'copy_last_smooth_l1', 'copy_last_mse',
                 'copy_last_psnr', 'energy']

        def sort_key(key: str):
            name, _, position = key.partition('@')
            return (order.index(name) if name in order else len(order),
                    int(position) if position else 0)

        return {key: metrics[key] for key in sorted(metrics, key=sort_key)}
