"""Tests of the pure image-quality functions in ebtvision.evaluation.functional."""
import math

import pytest
import torch
from skimage.metrics import structural_similarity

from ebtvision.evaluation.functional import (LPIPSScorer, build_lpips, mse, psnr, ssim,
                                             to_uint8_scale)


pytestmark = pytest.mark.usefixtures('single_thread')


def test_to_uint8_scale_maps_and_clamps():
    x = torch.tensor([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0])
    out = to_uint8_scale(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.tensor([0.0, 0.0, 127.5, 191.25, 255.0, 255.0]))
    assert torch.equal(to_uint8_scale(x, quantize=True),
                       torch.tensor([0.0, 0.0, 128.0, 191.0, 255.0, 255.0]))


def test_mse_psnr_known_values():
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.full((2, 3, 4, 4), 10.0)
    pred[1] = 20.0
    assert torch.allclose(mse(pred, target), torch.tensor([100.0, 400.0]))
    expected = torch.tensor([10 * math.log10(255**2 / 100), 10 * math.log10(255**2 / 400)])
    values = psnr(pred, target)
    assert values.shape == (2, )
    assert torch.allclose(values, expected)
    assert values[0].item() == pytest.approx(28.1308, abs=1e-3)
    assert psnr(pred, target, data_range=1.0)[0].item() == pytest.approx(-20.0, abs=1e-4)


def test_psnr_from_minus_one_one_scale():
    # An offset of 20/255 in [-1, 1] units is 10 levels on the 0-255 scale.
    gt = torch.zeros(3, 8, 8)
    pred = gt + 20.0 / 255.0
    values = psnr(to_uint8_scale(pred), to_uint8_scale(gt))
    assert values.shape == (1, )  # single (C, H, W) image
    assert values.item() == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-3)


def test_psnr_identical_is_inf():
    img = torch.rand(1, 3, 8, 8)
    assert torch.isinf(psnr(img, img)).all()


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r'\(1, 3, 8, 8\).*\(1, 3, 8, 9\)'):
        mse(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match='same shape'):
        ssim(torch.zeros(3, 16, 16), torch.zeros(1, 16, 16))
    with pytest.raises(ValueError, match='at least'):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_ssim_identical_and_noisy():
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 32, 32, generator=gen) * 255
    assert torch.allclose(ssim(img, img), torch.ones(2), atol=1e-5)
    noisy = (img + 30 * torch.randn(img.shape, generator=gen)).clamp(0, 255)
    values = ssim(noisy, img)
    assert values.shape == (2, )
    assert (values < 0.99).all()


def test_ssim_matches_skimage():
    gen = torch.Generator().manual_seed(1)
    gt = torch.rand(3, 32, 32, generator=gen) * 255
    pred = (gt + 25 * torch.randn(gt.shape, generator=gen)).clamp(0, 255)
    ours = ssim(pred, gt).item()
    ref = structural_similarity(
        pred.permute(1, 2, 0).double().numpy(), gt.permute(1, 2, 0).double().numpy(),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
        channel_axis=2)
    assert ours == pytest.approx(ref, abs=1e-4)


def test_lpips_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(FileNotFoundError) as err:
        build_lpips('alex', backbone_weights=None)
    msg = str(err.value)
    assert 'alexnet-owt-7be5be79.pth' in msg
    assert 'Nothing is downloaded' in msg
    assert "dict(type='LPIPSMetric'" in msg and 'backbone_weights=' in msg
    with pytest.raises(FileNotFoundError, match='vgg16-397923af.pth'):
        LPIPSScorer('vgg', backbone_weights=str(tmp_path / 'missing.pth'))


def random_alexnet_checkpoint(path):
    """Save a randomly initialised torchvision AlexNet checkpoint, return its state_dict.

    Only ``features.*`` (what LPIPS uses) plus one classifier tensor (which must be
    ignored) are saved: the full 233 MB file would only slow the test down.
    """
    import torchvision
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    state = {
        k: v
        for k, v in state.items() if k.startswith('features.') or k == 'classifier.6.bias'
    }
    torch.save(state, path)
    return state


def test_lpips_scorer_loads_local_backbone(tmp_path):
    path = tmp_path / 'alexnet-owt-7be5be79.pth'
    state = random_alexnet_checkpoint(path)
    scorer = LPIPSScorer('alex', backbone_weights=str(path))
    backbone = scorer.model.net
    # torchvision features.3 (second conv) lives in lpips' slice2 under the name '3'.
    assert torch.equal(getattr(backbone.slice2, '3').weight, state['features.3.weight'])
    assert torch.equal(getattr(backbone.slice1, '0').weight, state['features.0.weight'])
    assert torch.equal(getattr(backbone.slice5, '10').bias, state['features.10.bias'])

    gen = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1
    b = torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1
    same = scorer(a, a)
    diff = scorer(a, b)
    assert same.shape == diff.shape == (2, )
    assert torch.allclose(same, torch.zeros(2), atol=1e-6)
    assert (diff > 0).all()
    # Single (C, H, W) images and grayscale are accepted too.
    assert scorer(a[0], b[0]).shape == (1, )
    assert scorer(a[:, :1], b[:, :1]).shape == (2, )
    with pytest.raises(ValueError, match='same shape'):
        scorer(a, b[:1])


def test_lpips_rejects_wrong_checkpoint(tmp_path):
    # E.g. a VGG16 checkpoint given for net='alex'.
    path = tmp_path / 'vgg16-397923af.pth'
    torch.save({'features.0.weight': torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match='does not match'):
        build_lpips('alex', backbone_weights=str(path))
