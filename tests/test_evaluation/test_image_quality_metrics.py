"""Tests of the denoising metrics through MMEngine's Evaluator."""
import uuid

import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope

import ebtvision.evaluation  # noqa: F401  (registers the metrics)
from ebtvision.evaluation import LPIPSMetric, PSNRMetric, SSIMMetric
from ebtvision.evaluation.functional import mse, psnr, ssim, to_uint8_scale
from ebtvision.registry import METRICS
from ebtvision.structures import DenoiseDataSample

LEVELS = ('0.1', '0.5')


pytestmark = pytest.mark.usefixtures('single_thread')


def make_samples(num, seed=0, size=16, as_element=False):
    """Fake predict outputs with two noise levels, images in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(num):
        gt = torch.rand(3, size, size, generator=gen) * 2 - 1
        noisy, pred = {}, {}
        for level in LEVELS:
            noise = float(level) * torch.randn(gt.shape, generator=gen)
            noisy[level] = gt + noise
            pred[level] = gt + 0.3 * noise
        data = dict(gt_img=gt, noisy_imgs=noisy, pred_imgs=pred)
        samples.append(DenoiseDataSample(**data) if as_element else data)
    return samples


def expected_means(samples, fn, **kwargs):
    """Reference: per-image scores from the pure function, averaged over images."""
    out = {}
    for field, tag in (('pred_imgs', ''), ('noisy_imgs', 'noisy_')):
        for level in LEVELS:
            pred = torch.stack([to_uint8_scale(s[field][level]) for s in samples])
            gt = torch.stack([to_uint8_scale(s['gt_img']) for s in samples])
            out[f'{tag}@{level}'] = fn(pred, gt, **kwargs).mean().item()
    return out


@pytest.fixture
def ebt_scope():
    DefaultScope.get_instance(f'test-eval-{uuid.uuid4()}', scope_name='ebtvision')


@pytest.mark.parametrize('as_element', [False, True])
def test_evaluator_psnr_ssim(ebt_scope, as_element):
    evaluator = Evaluator([dict(type='PSNRMetric'), dict(type='SSIMMetric')])
    assert isinstance(evaluator.metrics[0], PSNRMetric)
    assert isinstance(evaluator.metrics[1], SSIMMetric)
    samples = make_samples(4, as_element=as_element)
    # Two batches of two, as a val loop would feed them.
    evaluator.process(samples[:2])
    evaluator.process(samples[2:])
    metrics = evaluator.evaluate(4)

    expected_keys = set()
    for name in ('psnr', 'psnr_batch', 'mse', 'ssim'):
        for level in LEVELS:
            expected_keys |= {f'denoise/{name}@{level}', f'denoise/noisy_{name}@{level}'}
    assert set(metrics) == expected_keys

    plain = [s.to_dict() if as_element else s for s in samples]
    for name, fn in (('psnr', psnr), ('mse', mse), ('ssim', ssim)):
        ref = expected_means(plain, fn)
        for key, value in ref.items():
            tag, level = key.split('@')
            assert metrics[f'denoise/{tag}{name}@{level}'] == pytest.approx(value, rel=1e-5)
    # The model output (30% of the noise) beats the noisy floor.
    for level in LEVELS:
        assert metrics[f'denoise/psnr@{level}'] > metrics[f'denoise/noisy_psnr@{level}']
        assert metrics[f'denoise/ssim@{level}'] > metrics[f'denoise/noisy_ssim@{level}']
        assert metrics[f'denoise/mse@{level}'] < metrics[f'denoise/noisy_mse@{level}']


def test_psnr_metric_caps_identical_images():
    gt = torch.zeros(3, 8, 8)
    sample = dict(gt_img=gt, pred_imgs={'0.1': gt.clone()}, noisy_imgs={'0.1': gt + 0.1})
    metric = PSNRMetric(max_psnr=100.0)
    metric.process(None, [sample])
    result = metric.compute_metrics(metric.results)
    assert result['psnr@0.1'] == 100.0
    assert result['mse@0.1'] == 0.0
    uncapped = PSNRMetric(max_psnr=None)
    uncapped.process(None, [sample])
    assert uncapped.compute_metrics(uncapped.results)['psnr@0.1'] == float('inf')


def test_quantize_option():
    gt = torch.full((3, 8, 8), -1.0)
    # 0.004 in [-1, 1] units is 0.51 levels: rounds to 1 level, i.e. mse 1 when quantized.
    sample = dict(gt_img=gt, pred_imgs={'0.1': gt + 0.004})
    metric = PSNRMetric(quantize=True)
    metric.process(None, [sample])
    assert metric.compute_metrics(metric.results)['mse@0.1'] == pytest.approx(1.0)
    metric = PSNRMetric()
    metric.process(None, [sample])
    assert metric.compute_metrics(metric.results)['mse@0.1'] == pytest.approx(0.51**2, rel=1e-4)


def test_results_are_per_image_floats_and_merge_across_ranks():
    samples = make_samples(5, seed=3)
    rank0, rank1 = PSNRMetric(), PSNRMetric()
    rank0.process(None, samples[:3])
    rank1.process(None, samples[3:])
    # One result per sample holding only floats, as collect_results expects.
    assert len(rank0.results) == 3 and len(rank1.results) == 2
    assert all(isinstance(v, float) for r in rank0.results for v in r.values())

    merged = PSNRMetric().compute_metrics(rank0.results + rank1.results)
    ref = expected_means(samples, psnr)
    assert merged['psnr@0.1'] == pytest.approx(ref['@0.1'], rel=1e-5)
    assert merged['noisy_psnr@0.5'] == pytest.approx(ref['noisy_@0.5'], rel=1e-5)
    # Overall mean over images, not the mean of the per-rank means.
    part0 = rank0.compute_metrics(rank0.results)['psnr@0.1']
    part1 = rank1.compute_metrics(rank1.results)['psnr@0.1']
    assert merged['psnr@0.1'] == pytest.approx((3 * part0 + 2 * part1) / 5, rel=1e-6)
    assert list(merged) == ['psnr@0.1', 'psnr@0.5', 'noisy_psnr@0.1', 'noisy_psnr@0.5',
                            'psnr_batch@0.1', 'psnr_batch@0.5', 'noisy_psnr_batch@0.1',
                            'noisy_psnr_batch@0.5', 'mse@0.1', 'mse@0.5', 'noisy_mse@0.1', 'noisy_mse@0.5']


def test_missing_fields_raise():
    metric = SSIMMetric()
    with pytest.raises(KeyError, match='gt_img'):
        metric.process(None, [dict(pred_imgs={'0.1': torch.zeros(3, 16, 16)})])
    with pytest.raises(KeyError, match='pred_imgs'):
        metric.process(None, [dict(gt_img=torch.zeros(3, 16, 16))])


def test_registered_names():
    for name in ('PSNRMetric', 'SSIMMetric', 'LPIPSMetric'):
        assert METRICS.get(name) is not None


def test_lpips_metric(tmp_path, monkeypatch):
    import torchvision
    hub = tmp_path / 'hub'
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    with pytest.raises(FileNotFoundError, match='alexnet-owt-7be5be79.pth'):
        LPIPSMetric()

    # With no backbone_weights the checkpoint is picked up from the torch hub cache.
    (hub / 'checkpoints').mkdir(parents=True)
    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.alexnet(weights=None).state_dict().items()
             if k.startswith('features.')}
    torch.save(state, hub / 'checkpoints' / 'alexnet-owt-7be5be79.pth')
    metric = LPIPSMetric()
    assert torch.equal(getattr(metric.scorer.model.net.slice3, '6').weight,
                       state['features.6.weight'])

    samples = make_samples(2, size=64)
    metric.process(None, samples)
    result = metric.compute_metrics(metric.results)
    assert list(result) == ['lpips@0.1', 'lpips@0.5', 'noisy_lpips@0.1', 'noisy_lpips@0.5']
    for level in LEVELS:
        pred = torch.stack([s['pred_imgs'][level].clamp(-1, 1) for s in samples])
        gt = torch.stack([s['gt_img'] for s in samples])
        ref = metric.scorer(pred, gt).mean().item()
        assert result[f'lpips@{level}'] == pytest.approx(ref, rel=1e-4)
        assert result[f'noisy_lpips@{level}'] > 0
