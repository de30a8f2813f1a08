"""Top-k classification accuracy (the linear probe's metric)."""
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from ebtvision.registry import METRICS


def topk_correct(scores: torch.Tensor, labels: torch.Tensor,
                 topk: Sequence[int] = (1, 5)) -> Dict[int, torch.Tensor]:
    """Whether each label is among the k highest scores: ``{k: (N,) bool}``.

    ``k`` larger than the number of classes is clamped to it (then always correct).
    """
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f'expected scores (N, C) and labels (N,), got {tuple(scores.shape)} '
                         f'and {tuple(labels.shape)}')
    ranked = scores.topk(min(max(topk), scores.shape[1]), dim=1).indices
    hits = ranked == labels[:, None]
    return {k: hits[:, :min(k, scores.shape[1])].any(dim=1) for k in topk}


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor,
                  topk: Sequence[int] = (1, 5)) -> Dict[int, float]:
    """Top-k accuracy in percent for each k."""
    return {k: 100.0 * float(hit.float().mean())
            for k, hit in topk_correct(scores, labels, topk).items()}


@METRICS.register_module()
class AccuracyMetric(BaseMetric):
    """Top-k accuracy (percent) from ``pred_score`` (C,) and ``gt_label`` of data samples.

    Reports ``top1``, ``top5``, ... (prefix ``probe/``). Per-sample hits are kept, so
    distributed evaluation gathers a few booleans per image.

    Args:
        topk: The k values.
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
        scores, labels = [], []
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            for key in ('pred_score', 'gt_label'):
                if key not in sample:
                    raise KeyError(f'AccuracyMetric needs `{key}` in each data sample, got '
                                   f'keys {sorted(sample)}')
            scores.append(torch.as_tensor(sample['pred_score']).float().reshape(-1))
            labels.append(int(sample['gt_label']))
        hits = topk_correct(torch.stack(scores), torch.tensor(labels), self.topk)
        for index in range(len(labels)):
            self.results.append({k: bool(hits[k][index]) for k in self.topk})

    def compute_metrics(self, results: List[Dict[int, bool]]) -> Dict[str, float]:
        return {f'top{k}': 100.0 * sum(r[k] for r in results) / max(len(results), 1)
                for k in self.topk}
