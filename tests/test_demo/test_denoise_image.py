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
