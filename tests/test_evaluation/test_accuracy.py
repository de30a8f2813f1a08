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


def test_topk_ties_follow_torch_topk_and_bad_k():
    from ebtvision.evaluation import topk_correct
    scores = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([1, 2])
    hits = topk_correct(scores, labels, topk=(1, 2))
    ranked = scores.topk(1, dim=1).indices[:, 0]
    assert hits[1].tolist() == (ranked == labels).tolist()
    assert hits[2][0]  # a tie for first: both tied classes are within the top 2
    with pytest.raises(ValueError, match='positive'):
        topk_accuracy(scores, labels, topk=(0, ))
    assert topk_accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == {1: 0.0, 5: 0.0}


def test_accuracy_metric_with_dicts_and_an_evaluator():
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('ebtvision'):  # as a runner would set it
        evaluator = Evaluator(dict(type='AccuracyMetric', topk=(1, 5)))
    batch = [dict(pred_score=torch.tensor([0.1, 0.9]), gt_label=1),
             dict(pred_score=torch.tensor([0.8, 0.2]), gt_label=torch.tensor(1))]
    evaluator.process(batch, {})
    assert evaluator.evaluate(2) == {'probe/top1': 50.0, 'probe/top5': 100.0}
    with pytest.raises(KeyError, match='gt_label'):
        evaluator.process([dict(pred_score=torch.tensor([0.1, 0.9]))], {})
