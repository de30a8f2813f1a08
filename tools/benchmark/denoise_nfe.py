"""PSNR and wall time per image: EBT thinking steps vs DiT reverse steps.

Counts network passes honestly: an EBT step is one forward *and* one backward pass through
the backbone (the energy gradient); a DiT step is one forward pass, over every run of its
reverse process (``DiTDenoiser.num_passes``; per noise level, as respace and recurse make
it differ). Prints a table.

    python tools/benchmark/denoise_nfe.py \
        --ebt-config configs/quickstart/ebt_denoise_skimage.py \
        --ebt-checkpoint work_dirs/ebt_denoise_skimage/iter_600.pth \
        --dit-config configs/quickstart/dit_denoise_skimage.py \
        --dit-checkpoint work_dirs/dit_denoise_skimage/iter_600.pth
"""
import argparse
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config
from mmengine.runner import Runner, load_checkpoint

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ebtvision.evaluation.functional import psnr, to_uint8_scale  # noqa: E402
from ebtvision.fileio import install_safe_checkpoint_io  # noqa: E402
from ebtvision.registry import MODELS  # noqa: E402
from ebtvision.utils import register_all_modules  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ebt-config', default='configs/quickstart/ebt_denoise_skimage.py')
    parser.add_argument('--ebt-checkpoint', required=True)
    parser.add_argument('--dit-config', default='configs/quickstart/dit_denoise_skimage.py')
    parser.add_argument('--dit-checkpoint', required=True)
    parser.add_argument('--ebt-steps', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--dit-steps', type=int, nargs='+', default=[10, 50, 100])
    parser.add_argument('--dit-method', choices=['ddim', 'ddpm'], default='ddim')
    parser.add_argument('--noise-levels', type=float, nargs='+', default=[0.1, 0.2])
    parser.add_argument('--repeats', type=int, default=3, help='timing repeats (median)')
    parser.add_argument('--threads', type=int, default=2)
    return parser.parse_args()


def build(config: str, checkpoint: str):
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    return cfg, model.eval()


def load_images(cfg) -> tuple:
    loader = Runner.build_dataloader(cfg.val_dataloader)
    images, samples = [], []
    for batch in loader:
        images += batch['inputs']
        samples += batch['data_samples']
    return torch.stack(images).float(), samples


class PassCounter:
    """Counts forward calls of a module."""

    def __init__(self, module):
        self.count = 0
        module.register_forward_hook(self._hook)

    def _hook(self, *args):
        self.count += 1


def noisy_images(model, images, samples, level_index, level):
    """The images noised at ``level`` as validation noises them."""
    return model.noise_for_eval(images, level, model.eval_noise(images, samples, level_index))


def evaluate(model, images, samples, level_index, level, run):
    """Noise the images like validation does, denoise with ``run``, return PSNR and time."""
    noisy = noisy_images(model, images, samples, level_index, level)
    start = time.perf_counter()
    denoised = run(noisy, level)
    elapsed = time.perf_counter() - start
    value = psnr(to_uint8_scale(denoised.clamp(-1, 1)), to_uint8_scale(images)).mean().item()
    noisy_value = psnr(to_uint8_scale(noisy.clamp(-1, 1)), to_uint8_scale(images)).mean().item()
    return value, noisy_value, elapsed


def passes_label(per_level) -> str:
    """Passes per image: one number, or one per noise level ('100/300') where they differ
    (the DiT's recurse runs the reverse process again above the training level)."""
    return str(per_level[0]) if len(set(per_level)) == 1 else '/'.join(map(str, per_level))


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    install_safe_checkpoint_io()  # load_checkpoint below: weights-only
    register_all_modules()
    ebt_cfg, ebt = build(args.ebt_config, args.ebt_checkpoint)
    _, dit = build(args.dit_config, args.dit_checkpoint)
    images, samples = load_images(ebt_cfg)
    n = images.shape[0]
    ebt_passes = PassCounter(ebt.backbone)

    rows = []
    variants = [('EBT', steps) for steps in args.ebt_steps] + \
        [('DiT', steps) for steps in args.dit_steps]
    for name, steps in variants:
        if name == 'EBT':
            model = ebt

            def run(noisy, level, steps=steps):
                return ebt.thinker(ebt.energy, noisy, create_graph=False, randomize=False,
                                   num_steps=steps).final

            backward_per_image = steps
        else:
            model = dit
            dit.test_cfg.update(num_steps=steps, method=args.dit_method)

            def run(noisy, level):
                with torch.no_grad():
                    return dit.denoise(noisy, level)[0]

            backward_per_image = 0
        psnrs, floors, times, forwards = [], [], [], []
        for level_index, level in enumerate(args.noise_levels):
            evaluate(model, images, samples, level_index, level, run)  # warm-up, untimed
            ebt_passes.count = 0
            level_times = []
            for _ in range(args.repeats):
                value, floor, elapsed = evaluate(model, images, samples, level_index, level, run)
                level_times.append(elapsed)
            # One batched call per repeat: backbone calls per repeat are passes per image.
            forwards.append(ebt_passes.count // args.repeats if name == 'EBT'
                            else dit.num_passes(level))
            psnrs.append(value)
            floors.append(floor)
            times.append(sorted(level_times)[len(level_times) // 2] / n)
        rows.append((name, steps, forwards, backward_per_image, psnrs, floors,
                     sum(times) / len(times)))

    dit_reference = [row for row in rows if row[0] == 'DiT' and row[1] == max(args.dit_steps)]
    reference_time = dit_reference[0][6] if dit_reference else None
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {n} images '
          f'({images.shape[-1]} px) from {args.ebt_config} val set, DiT {args.dit_method}')
    header = (f'{"model":5} {"steps":>5} {"fwd/img":>7} {"bwd/img":>7} ' + ' '.join(
        f'{"PSNR@" + format(level, "g"):>9}' for level in args.noise_levels) +
              f' {"ms/img":>8} {"speed-up vs DiT-" + str(max(args.dit_steps)):>20}')
    print(header)
    print(f'{"noisy":5} {"-":>5} {"-":>7} {"-":>7} ' +
          ' '.join(f'{v:9.2f}' for v in rows[0][5]))
    for name, steps, forwards, backward, psnrs, _, per_image in rows:
        speedup = f'{reference_time / per_image:.1f}x' if reference_time else '-'
        print(f'{name:5} {steps:5d} {passes_label(forwards):>7} {backward:7d} ' +
              ' '.join(f'{v:9.2f}' for v in psnrs) + f' {per_image * 1e3:8.2f} {speedup:>20}')


if __name__ == '__main__':
    main()
