"""Denoise image files from the command line with an EBT (or the DiT baseline).

    python demo/denoise_image.py IMAGE [IMAGE ...] [--config C] [--checkpoint K]
        [--noise-level S | --already-noisy] [--steps N] [--seed N]
        [--large-images tile|resize] [--out-dir DIR] [--device cpu|cuda]

For each image writes to ``--out-dir`` (default ``work_dirs/denoise_image``):

* ``<name>_denoised.png``: the result, 16-bit when the input was 16-bit, gray when it
  was gray;
* ``<name>_noisy.png``: what the model saw;
* ``<name>_trajectory.png``: the noisy start and the image after every thinking step,
  side by side;

and prints PSNR / SSIM (when there is a clean reference; SSIM is ``n/a`` for images under
3 px a side) and the energy after each step. A file that fails (unreadable, too large...)
is reported on stderr and the others are still processed; the exit status is then 1.
The checkpoint is loaded weights-only. See ``ebtvision.apis.DenoiseInferencer``.
"""
import os
import os.path as osp
import sys

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ebtvision.apis.options import cli_type, noise_level, positive_int  # noqa: E402
from ebtvision.utils import ArgumentParser  # noqa: E402

DEFAULT_CONFIG = osp.join('configs', 'quickstart', 'ebt_denoise_skimage.py')
DEFAULT_CHECKPOINT = osp.join('work_dirs', 'ebt_denoise_skimage', 'iter_600.pth')


def parse_args(argv=None):
    parser = ArgumentParser(
        description='Denoise image files with an EBT denoiser (or the DiT baseline)',
        epilog='No checkpoint yet? python tools/train.py '
        'configs/quickstart/ebt_denoise_skimage.py writes the default one.')
    parser.add_argument('images', nargs='+', help='image files (PNG 8/16-bit, JPEG, TIFF...)')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help=f'default: {DEFAULT_CONFIG}')
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help=f'loaded weights-only (default: {DEFAULT_CHECKPOINT})')
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument('--noise-level', type=cli_type(noise_level), default=0.1,
                       help='add DDPM noise at this level first (default 0.1)')
    noise.add_argument('--already-noisy', action='store_true',
                       help='the images are noisy already: add no noise')
    parser.add_argument('--steps', type=cli_type(positive_int),
                        help="thinking (EBT) or reverse (DiT) steps "
                        "(default: the config's)")
    parser.add_argument('--seed', type=int, default=0, help='noise seed (default 0)')
    parser.add_argument('--large-images', choices=('tile', 'resize'), default='tile')
    parser.add_argument('--out-dir', default=osp.join('work_dirs', 'denoise_image'))
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def write_image(path: str, image: np.ndarray, bit_depth: int) -> None:
    """Write a float [0, 1] RGB or gray image as PNG (16-bit for 16-bit inputs)."""
    scale, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    pixels = (np.clip(image, 0, 1) * scale + 0.5).astype(dtype)
    if pixels.ndim == 3:
        pixels = pixels[:, :, ::-1]  # RGB -> OpenCV's BGR
    if not cv2.imwrite(path, pixels):
        raise OSError(f'cannot write {path}')


def format_ssim(value) -> str:
    """SSIM to 3 decimals, or ``n/a`` (images under 3 px a side have no SSIM window)."""
    return 'n/a' if value is None else f'{value:.3f}'


def one_line_reason(error: BaseException, path: str) -> str:
    """The error as one line, without the path when the message starts with it."""
    message = ' '.join(str(error).split()) or type(error).__name__
    for prefix in (f'{path}: ', f'{osp.expanduser(path)}: '):
        if message.startswith(prefix):
            return message[len(prefix):]
    if not isinstance(error, (ValueError, OSError)):  # unexpected: say what kind it was
        message = f'{type(error).__name__}: {message}'
    return message


def denoise_one(inferencer, path: str, args) -> str:
    """Denoise ``path``, write its images and return its report line."""
    result = inferencer(path, noise_level=None if args.already_noisy else args.noise_level,
                        num_steps=args.steps, seed=args.seed)
    stem = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0])
    write_image(f'{stem}_denoised.png', result.denoised, result.bit_depth)
    write_image(f'{stem}_noisy.png', result.noisy, result.bit_depth)
    write_image(f'{stem}_trajectory.png', np.concatenate(result.trajectory, axis=1), 8)
    line = f'{path}: {result.num_steps} steps, {result.num_tiles} tile(s), ' \
           f'{result.seconds:.2f} s'
    if result.psnr is not None:
        line += (f'; PSNR {result.noisy_psnr:.2f} -> {result.psnr:.2f} dB, '
                 f'SSIM {format_ssim(result.noisy_ssim)} -> {format_ssim(result.ssim)}')
    if result.energies is not None:
        line += '; energy per step ' + ' '.join(f'{e:.4f}' for e in result.energies)
    return line


def main(argv=None) -> int:
    args = parse_args(argv)
    from ebtvision.apis import DenoiseInferencer, ModelLoadError
    try:
        inferencer = DenoiseInferencer(args.config, args.checkpoint, device=args.device,
                                       large_images=args.large_images)
    except ModelLoadError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    failed = []
    for path in args.images:
        try:
            print(denoise_one(inferencer, path, args), flush=True)
        except Exception as error:  # noqa: BLE001  one bad file must not end the batch
            print(f'failed: {path}: {one_line_reason(error, path)}', file=sys.stderr,
                  flush=True)
            failed.append(path)
    print(f'wrote {len(args.images) - len(failed)} result(s) to {args.out_dir}')
    if failed:
        print(f'error: {len(failed)} of {len(args.images)} image(s) failed: '
              + ', '.join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
