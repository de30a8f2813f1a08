"""demo/denoise_image.py: denoise files from the command line with the tiny EBT."""
import os.path as osp
import sys

import cv2
import numpy as np
from conftest import smooth_image, write_denoiser

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'demo'))
import denoise_image  # noqa: E402


def test_denoises_files_keeping_bit_depth_and_skipping_bad_ones(tmp_path, capsys):
    config, checkpoint = write_denoiser(tmp_path, 'ebt')
    gray16 = smooth_image(20, 24)[:, :, 0].astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / 'gray16.png'), gray16)
    cv2.imwrite(str(tmp_path / 'colour.png'), smooth_image(16, 16)[:, :, ::-1])
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG broken')
    out = tmp_path / 'out'
    code = denoise_image.main([
        str(tmp_path / 'gray16.png'), str(tmp_path / 'colour.png'), str(tmp_path / 'broken.png'),
        '--config', config, '--checkpoint', checkpoint, '--steps', '3', '--out-dir', str(out)])
    printed = capsys.readouterr()
    assert code == 1  # one image skipped
    assert 'broken.png' in printed.err and 'wrote 2 result(s)' in printed.out
    denoised = cv2.imread(str(out / 'gray16_denoised.png'), cv2.IMREAD_UNCHANGED)
    assert denoised.dtype == np.uint16 and denoised.shape == (20, 24)
    trajectory = cv2.imread(str(out / 'colour_trajectory.png'))
    assert trajectory.shape == (16, 16 * 4, 3)  # noisy start + 3 steps
    assert 'colour.png: 3 steps' in printed.out and 'PSNR' in printed.out
    assert printed.out.count('energy per step') == 2


def test_missing_checkpoint_fails_clearly(tmp_path, capsys):
    config, _ = write_denoiser(tmp_path, 'ebt')
    code = denoise_image.main(['x.png', '--config', config, '--checkpoint',
                               str(tmp_path / 'none.pth')])
    assert code == 1 and 'none.pth does not exist' in capsys.readouterr().err


def test_a_batch_goes_on_past_tiny_and_corrupt_files(tmp_path, capsys):
    """Tiny images are denoised (SSIM n/a under 3 px); a corrupt one is named and skipped."""
    config, checkpoint = write_denoiser(tmp_path, 'ebt')
    images = {'first.png': smooth_image(16, 16), 'four.png': smooth_image(4, 4, seed=1),
              'two.png': smooth_image(2, 2, seed=2), 'last.png': smooth_image(12, 20, seed=3)}
    for name, image in images.items():
        cv2.imwrite(str(tmp_path / name), image[:, :, ::-1])
    (tmp_path / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(40))
    names = ['first.png', 'four.png', 'two.png', 'corrupt.png', 'last.png']
    out = tmp_path / 'out'
    code = denoise_image.main([str(tmp_path / name) for name in names] + [
        '--config', config, '--checkpoint', checkpoint, '--steps', '2', '--out-dir', str(out)])
    printed = capsys.readouterr()
    assert code == 1
    for name, image in images.items():  # every readable image, tiny ones included
        stem = name[:-4]
        denoised = cv2.imread(str(out / f'{stem}_denoised.png'))
        assert denoised.shape == image.shape, name
        assert (out / f'{stem}_noisy.png').is_file() and (out / f'{stem}_trajectory.png').is_file()
        assert f'{tmp_path / name}: 2 steps' in printed.out
    assert not list(out.glob('corrupt*'))
    assert 'two.png: 2 steps' in printed.out and 'SSIM n/a -> n/a' in printed.out
    assert 'wrote 4 result(s)' in printed.out
    errors = printed.err.strip().splitlines()
    assert [line for line in errors if 'corrupt.png' in line][0].startswith(
        f'failed: {tmp_path / "corrupt.png"}: ')
    assert errors[-1] == f'error: 1 of 5 image(s) failed: {tmp_path / "corrupt.png"}'


def test_an_unexpected_error_on_one_file_does_not_end_the_batch(tmp_path, capsys, monkeypatch):
    config, checkpoint = write_denoiser(tmp_path, 'ebt')
    for name in ('a.png', 'b.png', 'c.png'):
        cv2.imwrite(str(tmp_path / name), smooth_image(8, 8))
    from ebtvision.apis import DenoiseInferencer
    real_call = DenoiseInferencer.__call__

    def flaky(self, image, **kwargs):
        if str(image).endswith('b.png'):
            raise RuntimeError('out of memory\nwhile denoising')
        return real_call(self, image, **kwargs)

    monkeypatch.setattr(DenoiseInferencer, '__call__', flaky)
    out = tmp_path / 'out'
    code = denoise_image.main([str(tmp_path / name) for name in ('a.png', 'b.png', 'c.png')]
                              + ['--config', config, '--checkpoint', checkpoint, '--steps', '1',
                                 '--out-dir', str(out)])
    printed = capsys.readouterr()
    assert code == 1
    assert (out / 'a_denoised.png').is_file() and (out / 'c_denoised.png').is_file()
    assert not (out / 'b_denoised.png').exists()
    assert (f'failed: {tmp_path / "b.png"}: RuntimeError: out of memory while denoising'
            in printed.err.splitlines())
    assert 'error: 1 of 3 image(s) failed' in printed.err and 'wrote 2 result(s)' in printed.out
