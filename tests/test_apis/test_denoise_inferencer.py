"""DenoiseInferencer: every input kind, any size (tiles / resize), noise, steps, metrics."""
import numpy as np
import pytest
import torch
from conftest import TINY_DENOISER_SIZE as TILE
from conftest import smooth_image, write_denoiser
from PIL import Image

from ebtvision.apis import DenoiseInferencer, ImageInputError, ModelLoadError
from ebtvision.apis.denoise_inferencer import image_quality


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp('inferencer')
    return {kind: write_denoiser(folder, kind) for kind in ('ebt', 'dit')}


@pytest.fixture(scope='module')
def ebt(models):
    return DenoiseInferencer(*models['ebt'])


def test_one_tile_matches_the_model_run_directly(ebt):
    image = smooth_image(TILE, TILE)
    result = ebt(image, noise_level=0.1, num_steps=3, seed=7)
    clean = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255 * 2 - 1
    noise = torch.randn((1, 3, TILE, TILE), generator=torch.Generator().manual_seed(7))
    noisy, _ = ebt.model.add_noise(clean, ebt.model.schedule.timestep(0.1), noise)
    trajectory = ebt.model.think(noisy, num_steps=3)
    expected = ((trajectory.final.clamp(-1, 1) + 1) / 2)[0].permute(1, 2, 0).numpy()
    assert result.num_tiles == 1
    np.testing.assert_allclose(result.denoised, expected, atol=1e-5)
    np.testing.assert_allclose(result.noisy, ((noisy.clamp(-1, 1) + 1) / 2)[0].permute(
        1, 2, 0).numpy(), atol=1e-6)
    energies = [float(e) for e in trajectory.energies] + [float(trajectory.final_energy)]
    np.testing.assert_allclose(result.energies, energies, rtol=1e-5)


def test_noise_follows_the_models_evaluation_noising(models):
    image = smooth_image(TILE, TILE)
    clean = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255 * 2 - 1
    noise = torch.randn((1, 3, TILE, TILE), generator=torch.Generator().manual_seed(3))
    direct = DenoiseInferencer(*models['ebt'])
    stretched = DenoiseInferencer(*models['ebt'])
    stretched.model.stretch_eval_noise = True
    results = {}
    for name, inferencer in (('direct', direct), ('stretched', stretched)):
        result = inferencer(image, noise_level=0.2, num_steps=1, seed=3)
        expected = inferencer.model.noise_for_eval(clean, 0.2, noise)
        np.testing.assert_allclose(result.noisy, ((expected.clamp(-1, 1) + 1) / 2)[0].permute(
            1, 2, 0).numpy(), atol=1e-6)
        results[name] = result.noisy
    # off, it is the training schedule's noise at t = 199 of 1000
    noisy, _ = direct.model.add_noise(clean, direct.model.schedule.timestep(0.2), noise)
    np.testing.assert_allclose(results['direct'], ((noisy.clamp(-1, 1) + 1) / 2)[0].permute(
        1, 2, 0).numpy(), atol=1e-6)
    assert not np.allclose(results['direct'], results['stretched'], atol=1e-5)


def test_trajectory_energies_and_metrics_agree(ebt):
    image = smooth_image(20, 28)
    result = ebt(image, noise_level=0.2, num_steps=4)
    assert len(result.trajectory) == len(result.energies) == 5 and result.num_steps == 4
    np.testing.assert_array_equal(result.trajectory[0], result.noisy)
    np.testing.assert_array_equal(result.trajectory[-1], result.denoised)
    assert not np.allclose(result.trajectory[1], result.trajectory[0])
    np.testing.assert_allclose(result.clean, image / 255.0, atol=1e-6)
    as_tensor = [torch.from_numpy(a).permute(2, 0, 1) * 2 - 1
                 for a in (result.denoised, result.noisy, result.clean)]
    expected = image_quality(as_tensor[0], as_tensor[2])
    assert result.psnr == pytest.approx(expected['psnr'], abs=1e-3)
    assert result.ssim == pytest.approx(expected['ssim'], abs=1e-4)
    mse = np.mean((result.noisy * 255 - image.astype(np.float64))**2)
    assert result.noisy_psnr == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-3)


def test_large_images_are_tiled_at_full_resolution(ebt):
    image = smooth_image(40, 23)
    result = ebt(image, noise_level=0.1, num_steps=1, seed=2)
    assert result.denoised.shape == (40, 23, 3) and result.num_tiles == 3 * 2
    # Tiles are independent runs: the top-left corner, covered by one tile only, is
    # exactly what the model makes of that tile.
    clean = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255 * 2 - 1
    noise = torch.randn((1, 3, 40, 23), generator=torch.Generator().manual_seed(2))
    noisy, _ = ebt.model.add_noise(clean, ebt.model.schedule.timestep(0.1), noise)
    corner = ebt.model.think(noisy[..., :TILE, :TILE], num_steps=1).final.clamp(-1, 1)
    corner = ((corner + 1) / 2)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(result.denoised[:4, :4], corner[:4, :4], atol=1e-5)


def test_resize_mode_works_at_the_model_size(models):
    inferencer = DenoiseInferencer(*models['ebt'], large_images='resize')
    result = inferencer(smooth_image(48, 24), noise_level=0.1)
    assert result.denoised.shape == (TILE, TILE // 2, 3) and result.num_tiles == 1
    assert result.clean.shape == result.denoised.shape


def test_small_images_are_padded_and_cropped_back(ebt):
    result = ebt(smooth_image(5, 11), noise_level=0.1)
    assert result.denoised.shape == (5, 11, 3) and result.num_tiles == 1
    assert result.psnr is not None and np.isfinite(result.ssim)


def test_same_seed_same_noise(ebt):
    image = smooth_image(TILE, TILE)
    first, again = ebt(image, seed=3), ebt(image, seed=3)
    other = ebt(image, seed=4)
    np.testing.assert_array_equal(first.noisy, again.noisy)
    assert not np.array_equal(first.noisy, other.noisy)


def test_grayscale_and_16_bit_inputs(ebt):
    gray16 = smooth_image(TILE, 20)[:, :, 1].astype(np.uint16) * 257
    result = ebt(gray16, noise_level=0.1, seed=5)
    assert result.denoised.ndim == 2 and result.noisy.shape == (TILE, 20)
    np.testing.assert_allclose(result.clean, gray16 / 65535.0, atol=1e-6)
    assert result.bit_depth == 16
    # Gray images get gray noise: one noise field shared by the three channels.
    clean = torch.from_numpy(gray16 / 65535.0).float()[None, None] * 2 - 1
    noise = torch.randn((1, TILE, 20), generator=torch.Generator().manual_seed(5))[None]
    noisy, _ = ebt.model.add_noise(clean, ebt.model.schedule.timestep(0.1), noise)
    np.testing.assert_allclose(result.noisy, ((noisy.clamp(-1, 1) + 1) / 2)[0, 0].numpy(),
                               atol=1e-6)


def test_rgba_and_pil_and_file_inputs(ebt, tmp_path):
    import cv2
    rgba = np.dstack([smooth_image(TILE, TILE), np.full((TILE, TILE), 255, np.uint8)])
    rgba[:4, :4, 3] = 0  # transparent corner: composited over white
    from_array = ebt(rgba, noise_level=0.1)
    np.testing.assert_allclose(from_array.clean[:4, :4], 1.0)
    path = tmp_path / 'rgba.png'
    cv2.imwrite(str(path), rgba[:, :, [2, 1, 0, 3]])
    from_file = ebt(str(path), noise_level=0.1)
    from_pil = ebt(Image.fromarray(rgba, 'RGBA'), noise_level=0.1)
    np.testing.assert_allclose(from_file.denoised, from_array.denoised, atol=1e-6)
    np.testing.assert_allclose(from_pil.denoised, from_array.denoised, atol=1e-6)


def test_already_noisy_input_and_reference(ebt):
    image = smooth_image(TILE, TILE)
    result = ebt(image, noise_level=None)
    np.testing.assert_allclose(result.noisy, image / 255.0, atol=1e-6)
    assert result.clean is None and result.psnr is None
    reference = smooth_image(TILE, TILE, seed=1)
    measured = ebt(image, noise_level=None, reference=reference)
    assert measured.psnr is not None and measured.noisy_psnr < 100
    with pytest.raises(ImageInputError, match='differ in size'):
        ebt(image, noise_level=None, reference=smooth_image(TILE, TILE + 1))
    with pytest.raises(ValueError, match='already noisy'):
        ebt(image, noise_level=0.1, reference=reference)


def test_thinking_longer_and_alpha(ebt):
    image = smooth_image(TILE, TILE)
    one, three = ebt(image, num_steps=1), ebt(image, num_steps=3)
    assert len(one.energies) == 2 and len(three.energies) == 4
    assert not np.allclose(one.denoised, three.denoised)
    small_step = ebt(image, num_steps=1, alpha=1e-6)
    np.testing.assert_allclose(small_step.denoised, small_step.noisy, atol=1e-4)
    assert ebt.default_steps == 2


def test_bad_requests(models, ebt):
    with pytest.raises(ValueError, match='num_steps'):
        ebt(smooth_image(TILE, TILE), num_steps=0)
    with pytest.raises(ValueError):
        ebt(smooth_image(TILE, TILE), noise_level=1.5)
    with pytest.raises(ImageInputError, match='float images must hold values in'):
        ebt(smooth_image(TILE, TILE).astype(np.float32))
    limited = DenoiseInferencer(*models['ebt'], max_pixels=50)
    with pytest.raises(ImageInputError, match='limit'):
        limited(smooth_image(TILE, TILE))


def test_dit_baseline(models):
    dit = DenoiseInferencer(*models['dit'])
    result = dit(smooth_image(20, 20), noise_level=0.1, num_steps=2)
    assert result.energies is None and len(result.trajectory) == 2
    assert result.num_steps == 2 and result.denoised.shape == (20, 20, 3)
    assert dit.default_steps == 3
    with pytest.raises(ValueError, match='alpha'):
        dit(smooth_image(TILE, TILE), alpha=1.0)


def test_model_errors(models, tmp_path):
    config, checkpoint = models['ebt']
    with pytest.raises(ModelLoadError, match='does not exist'):
        DenoiseInferencer(config, str(tmp_path / 'missing.pth'))
    with pytest.raises(ModelLoadError, match='does not fit'):
        DenoiseInferencer(config, models['dit'][1])
    video = tmp_path / 'video.py'
    video.write_text("model = dict(type='TransformerPPNextFrame', "
                     "encoder=dict(type='PixelPatchEncoder', patch_size=4), frame_size=16, "
                     "backbone=dict(type='CausalTransformer', arch=dict(depth=1, num_heads=2, "
                     "embed_dims=16)), head=dict(type='NextFrameHead'))\n")
    with pytest.raises(ModelLoadError, match='not an image denoiser'):
        DenoiseInferencer(str(video), None)
    with pytest.raises(ValueError, match='large_images'):
        DenoiseInferencer(config, checkpoint, large_images='crop')
