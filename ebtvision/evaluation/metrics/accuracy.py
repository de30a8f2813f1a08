"""Top-k classification accuracy (the linear probe's metric)."""
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from ebtvision.registry import METRICS
from ..functional import topk_accuracy, topk_correct

__all__ = ['AccuracyMetric', 'topk_accuracy', 'topk_correct']


@METRICS.register_module()
class AccuracyMetric(BaseMetric):
    """Top-k accuracy (percent) from ``pred_score`` (C,) and ``gt_label`` of data samples.

    Reports ``top1``, ``top5``, ... (prefix ``probe/``). ``process`` keeps one boolean per
    k and image, so distributed evaluation gathers small things rather than (C,) scores.
    Data samples may be dicts or :class:`~mmengine.structures.BaseDataElement` (e.g.
    ``ClassifyDataSample``, whose ``gt_label`` is metainfo).

    Args:
        topk: The k values (a k above the class count is clamped to it).
        collect_device: Device used to gather results across ranks.
        prefix: Prefix of the reported keys; ``'probe'`` if None.
    """

    default_prefix: Optional[str] = 'probe'

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(int(k) for k in topk)
        if not self.topk or min(self.topk) < 1:
            raise ValueError(f'topk must be positive integers, got {topk}')

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store whether each sample's label is within its top-k scores.

        Raises:
            KeyError: A sample lacks ``pred_score`` or ``gt_label``.
        """
        if not data_samples:
            return
        scores, labels = [], []
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()  # data fields and metainfo together
            for key in ('pred_score', 'gt_label'):
                if key not in sample:
                    raise KeyError(f'AccuracyMetric needs `{key}` in each data sample, got '
                                   f'keys {sorted(sample)}')
            scores.append(torch.as_tensor(sample['pred_score']).detach().float().reshape(-1))
            labels.append(int(torch.as_tensor(sample['gt_label']).reshape(-1)[0]))
        hits = topk_correct(torch.stack(scores).cpu(), torch.tensor(labels), self.topk)
        for index in range(len(labels)):
            self.results.append({k: bool(hits[k][index]) for k in self.topk})

    def compute_metrics(self, results: List[Dict[int, bool]]) -> Dict[str, float]:
        """``top{k}`` percentages over the gathered per-sample hits."""
        return {f'top{k}': 100.0 * sum(r[k] for r in results) / max(len(results), 1)
                for k in self.topk}
