"""Request latency of the Gradio denoising demo, measured as a user's client sees it.

Starts ``demo/gradio_denoise.py``'s page in this process on a free localhost port and
sends ``/denoise`` requests with ``gradio_client`` for each thinking-step count: the
round trip (upload, denoising, PNG encoding of every output, download) and, inside it,
the model part reported by the inferencer. Prints a table of medians.

    python tools/benchmark/demo_latency.py [--size 128] [--steps 1 2 4] [--repeats 5]
        [--config C --checkpoint K] [--dit-config C2 --dit-checkpoint K2]

The image is a centre crop of scikit-image's astronaut resized to ``--size`` pixels.
Without ``--checkpoint`` the quick-start's is used; ``--checkpoint none`` times a
randomly initialised model (same cost).
"""
import argparse
import os
import os.path as osp
import socket
import statistics
import sys
import tempfile
import time

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # fair timings on a shared 2-core box

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'demo'))
sys.path.insert(0, ROOT)
import gradio_denoise  # noqa: E402  (sets Gradio's environment before gradio is imported)

from ebtvision.utils import exit_on_missing_extra, require  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=gradio_denoise.DEFAULT_CONFIG)
    parser.add_argument('--checkpoint', default=gradio_denoise.DEFAULT_CHECKPOINT,
                        help='"none" for random weights')
    parser.add_argument('--dit-config')
    parser.add_argument('--dit-checkpoint')
    parser.add_argument('--size', type=int, default=128, help='square image size (px)')
    parser.add_argument('--steps', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--dit-steps', type=int, default=100)
    parser.add_argument('--repeats', type=int, default=5, help='requests per setting (median)')
    parser.add_argument('--threads', type=int, default=2)
    return parser.parse_args(argv)


def test_image(size: int, folder: str) -> str:
    import cv2
    import skimage.data
    photo = skimage.data.astronaut()
    side = min(photo.shape[:2])
    top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
    crop = photo[top:top + side, left:left + side]
    path = osp.join(folder, f'astronaut_{size}.png')
    cv2.imwrite(path, cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    return path


@exit_on_missing_extra
def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    gradio_client = require('gradio_client', 'tools/benchmark/demo_latency.py')  # [demo]
    Client, handle_file = gradio_client.Client, gradio_client.handle_file
    torch.set_num_threads(args.threads)
    checkpoint = None if args.checkpoint == 'none' else args.checkpoint
    demo_args = gradio_denoise.parse_args(['--config', args.config, '--checkpoint', 'unused'])
    ebt, error = gradio_denoise.load_inferencer(args.config, checkpoint, 'EBT', demo_args)
    if error:
        sys.exit(f'error: {error}\n{gradio_denoise.GET_A_MODEL}')
    dit = None
    if args.dit_config:
        dit, error = gradio_denoise.load_inferencer(args.dit_config, args.dit_checkpoint,
                                                    'DiT', demo_args)
        if error:
            sys.exit(f'error: {error}')
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        demo_args.port = sock.getsockname()[1]
    page = gradio_denoise.DenoiseDemo(ebt, dit).build()  # no examples: no request on open
    gradio_denoise.launch(page, demo_args, block=False)
    try:
        client = Client(f'http://127.0.0.1:{demo_args.port}/', verbose=False)
        with tempfile.TemporaryDirectory() as folder:
            image = test_image(args.size, folder)
            client.predict(handle_file(image), 0.1, 1, False, 0, args.dit_steps, 1, 0.0,
                           api_name='/denoise')  # warm-up
            print(f'{args.size}x{args.size} px image, {ebt.tile_size} px model tiles, '
                  f'{torch.get_num_threads()} threads, median of {args.repeats} requests')
            print('| EBT steps | request (s) | EBT model part (s) | DiT model part (s) | '
                  'PSNR noisy to EBT (dB) |')
            print('|---|---|---|---|---|')
            for steps in args.steps:
                rounds, ebt_parts, dit_parts = [], [], []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    details = client.predict(handle_file(image), 0.1, steps, False, 0,
                                             args.dit_steps, 1, 0.0, api_name='/denoise')[-1]
                    rounds.append(time.perf_counter() - start)
                    ebt_parts.append(details['ebt']['seconds'])
                    if details['dit']:
                        dit_parts.append(details['dit']['seconds'])
                dit_part = f'{statistics.median(dit_parts):.3f}' if dit_parts else '-'
                print(f'| {steps} | {statistics.median(rounds):.3f} | '
                      f'{statistics.median(ebt_parts):.3f} | {dit_part} | '
                      f"{details['ebt']['noisy_psnr']:.2f} -> {details['ebt']['psnr']:.2f} |")
    finally:
        page.close()


if __name__ == '__main__':
    main()
