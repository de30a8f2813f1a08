"""Tests of the batch form of PSNR (the EBT paper's test figure) beside per-image PSNR."""
import math
import uuid

import pytest
import torch
import torch.nn.functional as F
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope

import ebtvision.evaluation  # noqa: F401  (registers the metrics)
from ebtvision.evaluation import PSNRMetric
from ebtvision.evaluation.functional import psnr, psnr_batch

LEVELS = ('0.1', '0.2')


pytestmark = pytest.mark.usefixtures('single_thread')


@pytest.fixture
def ebt_scope():
    DefaultScope.get_instance(f'test-psnr-batch-{uuid.uuid4()}', scope_name='ebtvision')


def make_samples(num, seed=0, size=8):
    """Denoising samples in [-1, 1] whose errors differ a lot from image to image."""
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(num):
        gt = torch.rand(3, size, size, generator=gen) * 2 - 1
        scale = 0.02 * (i + 1)**2  # quadratically growing error: very unequal image MSEs
        noisy, pred = {}, {}
        for level in LEVELS:
            noise = float(level) * torch.randn(gt.shape, generator=gen)
            noisy[level] = gt + noise
            pred[level] = gt + scale * torch.randn(gt.shape, generator=gen)
        samples.append(dict(gt_img=gt, noisy_imgs=noisy, pred_imgs=pred))
    return samples


def by_hand(samples, field, level):
    """The paper code's recipe: clamp to [0, 255], MSE over the whole batch, then PSNR."""
    pred = torch.stack([s[field][level] for s in samples])
    gt = torch.stack([s['gt_img'] for s in samples])
    pred = ((pred + 1) * 127.5).clamp(0, 255)
    gt = ((gt + 1) * 127.5).clamp(0, 255)
    return 10 * math.log10(255.0**2 / F.mse_loss(pred, gt).item())


# ----------------------------------------------------------------------------- function
def test_psnr_batch_known_values_and_jensen():
    target = torch.zeros(2, 1, 4, 4)
    pred = target.clone()
    pred[0] += 1.0  # image MSE 1
    pred[1] += 3.0  # image MSE 9
    value = psnr_batch(pred, target)
    assert value.dim() == 0
    # Batch MSE (1 + 9) / 2 = 5.
    assert value.item() == pytest.approx(10 * math.log10(255.0**2 / 5.0), rel=1e-6)
    per_image_mean = psnr(pred, target).mean().item()
    assert per_image_mean == pytest.approx(
        (10 * math.log10(255.0**2) + 10 * math.log10(255.0**2 / 9.0)) / 2, rel=1e-6)
    assert value.item() < per_image_mean - 1.0  # 41.14 dB vs 43.36 dB

    # Same MSE on every image: the two forms agree.
    equal = target + 2.0
    assert psnr_batch(equal, target).item() == pytest.approx(psnr(equal, target).mean().item())
    # Single (C, H, W) image and other data ranges work like psnr().
    assert psnr_batch(pred[1], target[1], data_range=1.0).item() == pytest.approx(
        psnr(pred[1], target[1], data_range=1.0).item())
    assert psnr_batch(target, target).item() == float('inf')
    with pytest.raises(ValueError):
        psnr_batch(pred, target[:1])


def test_psnr_batch_never_above_per_image_mean_on_random_batches():
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        target = torch.rand(6, 3, 8, 8, generator=gen) * 255
        scales = torch.rand(6, 1, 1, 1, generator=gen) * 40
        pred = (target + scales * torch.randn(target.shape, generator=gen)).clamp(0, 255)
        batch_value = psnr_batch(pred, target).item()
        assert batch_value == pytest.approx(
            10 * math.log10(255.0**2 / F.mse_loss(pred, target).item()), rel=1e-5)
        assert batch_value <= psnr(pred, target).mean().item()


# ----------------------------------------------------------------------------- metric
def test_metric_reports_both_forms_per_level():
    samples = make_samples(4)
    metric = PSNRMetric()
    metric.process(None, samples)
    result = metric.compute_metrics(metric.results)
    for level in LEVELS:
        for field, tag in (('pred_imgs', ''), ('noisy_imgs', 'noisy_')):
            assert result[f'{tag}psnr_batch@{level}'] == pytest.approx(
                by_hand(samples, field, level), rel=1e-5)
            assert result[f'{tag}psnr_batch@{level}'] <= result[f'{tag}psnr@{level}']
        # These samples have very unequal errors: the per-image mean reads clearly higher.
        assert result[f'psnr@{level}'] > result[f'psnr_batch@{level}'] + 1.0
    # Still one dict of floats per sample, for collect_results.
    assert len(metric.results) == 4
    assert all(isinstance(v, float) for r in metric.results for v in r.values())


def test_metric_caps_the_batch_value():
    gt = torch.zeros(2, 3, 8, 8)
    samples = [dict(gt_img=g, pred_imgs={'0.1': g.clone()}) for g in gt]
    metric = PSNRMetric(max_psnr=100.0)
    metric.process(None, samples)
    assert metric.compute_metrics(metric.results)['psnr_batch@0.1'] == 100.0
    uncapped = PSNRMetric(max_psnr=None)
    uncapped.process(None, samples)
    assert uncapped.compute_metrics(uncapped.results)['psnr_batch@0.1'] == float('inf')


def test_evaluator_two_batches(ebt_scope):
    """A real evaluation through MMEngine's Evaluator: batches of 3 and 2 images."""
    samples = make_samples(5, seed=2)
    batches = [samples[:3], samples[3:]]
    evaluator = Evaluator([dict(type='PSNRMetric')])
    for batch in batches:
        evaluator.process(batch)
    metrics = evaluator.evaluate(len(samples))

    for level in LEVELS:
        for field, tag in (('pred_imgs', ''), ('noisy_imgs', 'noisy_')):
            per_batch = [by_hand(batch, field, level) for batch in batches]
            # Mean over batches weighted by their size, as Lightning averages logged values.
            expected = (3 * per_batch[0] + 2 * per_batch[1]) / 5
            value = metrics[f'denoise/{tag}psnr_batch@{level}']
            assert value == pytest.approx(expected, rel=1e-5)
            if field == 'pred_imgs':  # errors very unequal across images here
                # It depends on the batching: one batch of all five gives another figure.
                assert value != pytest.approx(by_hand(samples, field, level), rel=1e-3)
            assert value <= metrics[f'denoise/{tag}psnr@{level}']
            per_image = psnr(((torch.stack([s[field][level] for s in samples]) + 1) * 127.5
                              ).clamp(0, 255), (torch.stack([s['gt_img'] for s in samples]) + 1)
                             * 127.5).mean().item()
            assert metrics[f'denoise/{tag}psnr@{level}'] == pytest.approx(per_image, rel=1e-5)

    # offline_evaluate splits into chunks the same way.
    offline = Evaluator([dict(type='PSNRMetric')]).offline_evaluate(samples, chunk_size=3)
    assert offline == pytest.approx(metrics, rel=1e-6)


def test_equal_batches_give_plain_mean_over_batches_and_ranks_merge():
    samples = make_samples(4, seed=3)
    rank0, rank1 = PSNRMetric(), PSNRMetric()
    rank0.process(None, samples[:2])  # each rank scores its own batch
    rank1.process(None, samples[2:])
    merged = PSNRMetric().compute_metrics(rank0.results + rank1.results)
    expected = (by_hand(samples[:2], 'pred_imgs', '0.1') +
                by_hand(samples[2:], 'pred_imgs', '0.1')) / 2
    assert merged['psnr_batch@0.1'] == pytest.approx(expected, rel=1e-5)
