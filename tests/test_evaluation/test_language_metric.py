"""LanguageModelMetric: token-weighted perplexity and accuracy, completion accuracy."""
import math

import pytest
import torch
import torch.nn.functional as F

from ebtvision.evaluation import LanguageModelMetric
from ebtvision.structures import TextDataSample


def sample(logits, targets, mask, completion=None, predicted=None):
    item = TextDataSample(metainfo=dict(completion=completion) if completion else {})
    item.pred_logits, item.gt_tokens, item.loss_mask = logits, targets, mask
    if predicted is not None:
        item.pred_completion = predicted
    return item


def test_perplexity_accuracy_and_completion():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    masks = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    metric = LanguageModelMetric()
    metric.process(None, [sample(logits[0], targets[0], masks[0], ')]', ')]'),
                          sample(logits[1], targets[1], masks[1], ')', ']')])
    result = metric.evaluate(2)
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='none')
    expected = losses[masks.flatten()].mean()  # token-weighted over both samples
    assert result['text/cross_entropy'] == pytest.approx(float(expected), rel=1e-5)
    assert result['text/perplexity'] == pytest.approx(math.exp(float(expected)), rel=1e-5)
    correct = ((logits.argmax(-1) == targets) & masks).sum() / masks.sum()
    assert result['text/accuracy'] == pytest.approx(float(correct))
    assert result['text/completion_accuracy'] == 0.5


def test_all_masked_out_is_an_error():
    metric = LanguageModelMetric()
    metric.process(None, [sample(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long),
                                 torch.zeros(2, dtype=torch.bool))])
    with pytest.raises(ValueError, match='no target tokens'):
        metric.evaluate(1)
