"""Top-k accuracy: the pure function and AccuracyMetric."""
import pytest
import torch

from ebtvision.evaluation import AccuracyMetric, topk_accuracy
from ebtvision.structures import ClassifyDataSample


def test_topk_accuracy_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = torch.tensor([1, 1, 0, 2])
    accuracy = topk_accuracy(scores, labels, topk=(1, 2, 5))
    assert accuracy[1] == 25.0  # only the first
    assert accuracy[2] == 50.0  # the second label is second best
    assert accuracy[5] == 100.0  # k beyond the class count: every label counts
    with pytest.raises(ValueError):
        topk_accuracy(scores, labels[:2])


def test_accuracy_metric_end_to_end():
    metric = AccuracyMetric(topk=(1, 2))
    samples = []
    for label, score in [(0, [0.9, 0.1, 0.0]), (2, [0.5, 0.2, 0.3]), (1, [0.2, 0.1, 0.7])]:
        sample = ClassifyDataSample(metainfo=dict(gt_label=label))
        sample.pred_score = torch.tensor(score)
        samples.append(sample)
    metric.process({}, samples)
    result = metric.compute_metrics(metric.results)
    assert result == pytest.approx({'top1': 100 / 3, 'top2': 200 / 3})
    with pytest.raises(KeyError, match='pred_score'):
        metric.process({}, [ClassifyDataSample(metainfo=dict(gt_label=0))])
