"""Language-model metrics: perplexity, next-token accuracy, Dyck completion accuracy."""
import math
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric

from ebtvision.registry import METRICS


@METRICS.register_module()
class LanguageModelMetric(BaseMetric):
    """Perplexity and accuracy of next-token predictions, and Dyck completion accuracy.

    Reads ``gt_tokens``, ``pred_logits`` and ``loss_mask`` of each sample (counting only
    the masked-in targets, token-weighted over the dataset), and, when present,
    ``pred_completion`` against the ``completion`` metainfo: the fraction of samples whose
    generated closing sequence is exactly right. Reports ``text/perplexity``,
    ``text/accuracy``, ``text/cross_entropy`` and ``text/completion_accuracy``.
    """

    default_prefix = 'text'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            sample = sample.to_dict() if hasattr(sample, 'to_dict') else dict(sample)
            targets, logits = sample['gt_tokens'], sample['pred_logits'].float()
            mask = sample['loss_mask'].bool()
            losses = F.cross_entropy(logits, targets, reduction='none')
            result = dict(tokens=int(mask.sum()), ce_sum=float(losses[mask].sum()),
                          correct=int(((logits.argmax(-1) == targets) & mask).sum()))
            if 'pred_completion' in sample:
                result['completion_correct'] = float(
                    sample['pred_completion'] == sample['completion'])
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        tokens = sum(r['tokens'] for r in results)
        if tokens == 0:
            raise ValueError('no target tokens to score (all padding or masked out)')
        cross_entropy = sum(r['ce_sum'] for r in results) / tokens
        metrics = dict(cross_entropy=cross_entropy, perplexity=math.exp(min(cross_entropy, 50)),
                       accuracy=sum(r['correct'] for r in results) / tokens)
        completions = [r['completion_correct'] for r in results if 'completion_correct' in r]
        if completions:
            metrics['completion_accuracy'] = sum(completions) / len(completions)
        return metrics
