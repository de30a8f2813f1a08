"""ThinkingMetric: mean final energy and steps used, per level (images) or per clip (video)."""
import pytest
import torch

from ebtvision.evaluation import ThinkingMetric
from ebtvision.structures import DenoiseDataSample, VideoDataSample


def test_denoiser_samples_are_averaged_per_level():
    metric = ThinkingMetric()
    samples = []
    for final, steps in ((-1.0, 2), (-3.0, 4)):
        sample = DenoiseDataSample()
        sample.energies = {'0.1': torch.tensor([0.0, final]), '0.2': torch.tensor([1.0, 2 * final])}
        sample.steps_used = {'0.1': torch.tensor(steps), '0.2': torch.tensor(steps + 1)}
        samples.append(sample)
    metric.process(None, samples)
    results = metric.evaluate(2)
    assert results == pytest.approx({'thinking/energy@0.1': -2.0, 'thinking/energy@0.2': -4.0,
                                     'thinking/steps_used@0.1': 3.0,
                                     'thinking/steps_used@0.2': 4.0})


def test_video_samples_and_models_without_energies():
    metric = ThinkingMetric()
    clip = VideoDataSample()
    clip.energies = torch.tensor([1.0, 3.0])
    clip.steps_used = torch.tensor(2.5)
    metric.process(None, [clip, VideoDataSample()])  # the second: a Transformer++ clip
    assert metric.evaluate(2) == pytest.approx({'thinking/steps_used': 2.5})
    empty = ThinkingMetric()
    empty.process(None, [DenoiseDataSample()])
    assert empty.evaluate(1) == {}
