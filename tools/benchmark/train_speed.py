"""Seconds per training step of our EBT and DiT denoisers (optionally vs the authors' code).

A training step is what one optimisation step costs before the optimiser: the loss
(``model(images, mode='loss')['loss']``; for the EBT this is the energy forward, the energy
gradient with ``create_graph=True``, the thinking update and the pixel loss) followed by
``loss.backward()``. No optimiser step is taken (weights never change), gradients are reset
to ``None`` between steps, outside the timed region.

adaLN-Zero and the output layers are zero-initialised, which makes many gradients exactly
zero and the timing unrepresentative, so every all-zero weight is re-drawn from
N(0, 0.02) (in both implementations) before timing.

With ``--reference-repo PATH`` (a directory holding the authors' ``model/`` package from
https://github.com/alexiglad/EBT, e.g. exported with ``git archive HEAD model | tar -x -C
PATH``; needs ``timm``), their EBT and DiT denoisers are timed in the same process,
interleaved with ours (``tools/benchmark/parity.py`` proves that both compute the same
losses and gradients from the same weights). ``pytorch_lightning``,
``torchmetrics`` and ``diffusers`` are only imported by their files, never used on this
path, and are replaced by stub modules.

    python tools/benchmark/train_speed.py --arch xs --img-size 64 --patch-size 8 \
        --batch-size 16 --mlp-ratio 4 --steps 1 --repeats 7 --threads 2 \
        --reference-repo /tmp/ebt_ref

With ``--end-to-end`` it times what users run instead: ``tools/train.py`` (runner, data
loading from the quick-start photos, gradient clipping, AdamW; its own defaults) on the
EBT of these settings for ``--iters`` iterations, beside our bare EBT step with the same
optimizer and, with ``--reference-repo``, the reference's step with it, in one run. The last
line reads ``end-to-end speed-up vs reference: X.XXx`` (the reference's step time over a
``tools/train.py`` iteration).

With ``--defaults`` it times ``tools/train.py`` under its own defaults and under each
alternative (data loaded in the main process, one thread, ``OMP_WAIT_POLICY=PASSIVE``) at
every model size of ``--archs``: the measurements its defaults were chosen from.

    python tools/benchmark/train_speed.py --defaults --archs 4xs xs --iters 15

Timing: ``--warmup`` untimed steps per implementation, then ``--repeats`` rounds; every
round runs each implementation once, in a rotating order, so that slow phases of a shared
machine hit all of them alike. The table gives the median (and the minimum) of the rounds.

Peak memory: one more step of each implementation under ``torch.profiler`` with
``profile_memory=True``; its memory timeline gives the peak of the bytes held by tensors
allocated during the step (activations, saved tensors, gradients; not the weights). If the
profiler's timeline is unavailable, the fallback is the growth of the peak resident set
size (``ru_maxrss``) over one step in a fresh subprocess, which includes allocator
overhead. ``--no-memory`` skips it.
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from parity_families.common import (HParams, install_reference_stubs,  # noqa: E402
                                    perturb_zero_weights)

from ebtvision.utils import exit_on_missing_extra, require  # noqa: E402

IMPLEMENTATIONS = ('ours_ebt', 'ours_dit', 'ref_ebt', 'ref_dit')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='xs')
    parser.add_argument('--img-size', type=int, default=64)
    parser.add_argument('--patch-size', type=int, default=8)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--mlp-ratio', type=float, default=4.0)
    parser.add_argument('--steps', type=int, default=1, help='EBT thinking (MCMC) steps')
    parser.add_argument('--alpha', type=float, default=3000.0, help='EBT step size')
    parser.add_argument('--repeats', type=int, default=7, help='timed rounds (median)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps per model')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--reference-repo', default=None,
                        help="directory containing the authors' model/ package")
    parser.add_argument('--only', nargs='+', choices=IMPLEMENTATIONS, default=None,
                        help='time only these implementations')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory runs')
    parser.add_argument('--end-to-end', action='store_true',
                        help='time tools/train.py iterations beside the bare steps with AdamW')
    parser.add_argument('--defaults', action='store_true',
                        help="time tools/train.py under its defaults and under each "
                        'alternative thread / worker / OpenMP setting, for every --archs')
    parser.add_argument('--archs', nargs='+', default=['4xs', 'xs'],
                        help='--defaults: model sizes to measure at')
    parser.add_argument('--iters', type=int, default=20,
                        help='--end-to-end: tools/train.py iterations (the first 3 untimed)')
    parser.add_argument('--measure-memory', choices=IMPLEMENTATIONS, default=None,
                        help=argparse.SUPPRESS)  # internal: one subprocess per model
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- helpers
def arch_settings(arch: str) -> Dict[str, int]:
    from ebtvision.models.backbones import resolve_arch
    return resolve_arch(arch)


# ----------------------------------------------------------------------------- ours
def build_ours(args, which: str) -> nn.Module:
    from ebtvision.models import DiTDenoiser, EBTDenoiser
    backbone = dict(arch=args.arch, img_size=args.img_size, patch_size=args.patch_size,
                    mlp_ratio=args.mlp_ratio)
    if which == 'ebt':
        model = EBTDenoiser(
            backbone=dict(type='BidirectionalEBT', **backbone),
            thinker=dict(type='EnergyMinimizer', num_steps=args.steps, alpha=args.alpha))
    else:
        # Learned sigma (MSE + VLB), as the reference's DiT job trains it.
        model = DiTDenoiser(backbone=dict(type='DiT', learn_sigma=True, **backbone))
    perturb_zero_weights(model)
    return model.train()


def ours_step(model: nn.Module, images: torch.Tensor) -> Callable[[], None]:

    def step():
        model(images, mode='loss')['loss'].backward()

    return step


# ----------------------------------------------------------------------------- theirs
def reference_hparams(args) -> HParams:
    """Their image-denoising hyper-parameters (train_model.py defaults, job_scripts/img/
    pretrain_denoising) with our benchmark's size; S1 EBT: no randomisation, no Langevin,
    detach between steps, no truncation, no gradient clamp."""
    arch = arch_settings(args.arch)
    return HParams(
        image_task='denoising', image_dims=[args.img_size, args.img_size],
        patch_size=args.patch_size, embedding_dim=arch['embed_dims'],
        num_transformer_blocks=arch['depth'], multiheaded_attention_heads=arch['num_heads'],
        ffn_dim_multiplier=args.mlp_ratio, diffusion_steps=100, denoise_images_noise_level=0.1,
        randomize_denoise_images_noise_level=False, mcmc_step_size=args.alpha,
        mcmc_step_size_learnable=True, mcmc_num_steps=args.steps, langevin_dynamics_noise=0.0,
        no_langevin_during_eval=False, randomize_mcmc_step_size_scale=1.0,
        randomize_mcmc_num_steps=0, randomize_mcmc_num_steps_min=0,
        randomize_mcmc_num_steps_final_landscape=False, no_mcmc_detach=False,
        truncate_mcmc=False, clamp_futures_grad=False, clamp_futures_grad_max_change=9.0,
        reconstruction_coeff=1.0, execution_mode='pretrain', mcmc_replay_buffer=False,
        batch_size_per_device=args.batch_size)


def import_reference(path: str):
    path = osp.abspath(path)
    if not osp.isfile(osp.join(path, 'model', 'img', 'ebt_denoise.py')):
        raise FileNotFoundError(f'{path} does not contain model/img/ebt_denoise.py')
    require('timm', "--reference-repo (the authors' image models)")  # [probe] extra
    install_reference_stubs()
    if path not in sys.path:
        sys.path.insert(0, path)
    from model.img.dit_denoise import Diffusion_Transformer_IMG_Denoise
    from model.img.ebt_denoise import EBT_IMG_Denoise
    return EBT_IMG_Denoise, Diffusion_Transformer_IMG_Denoise


def build_reference(args, which: str) -> nn.Module:
    ebt_cls, dit_cls = import_reference(args.reference_repo)
    model = (ebt_cls if which == 'ebt' else dit_cls)(reference_hparams(args))
    perturb_zero_weights(model)
    return model.train()


def reference_ebt_loss(model: nn.Module, images: torch.Tensor,
                       noisy: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The training part of their ``EBT_IMG_Denoise.forward_loss_wrapper`` (phase 'train')."""
    hp = model.hparams
    if noisy is None:
        t = torch.tensor(hp.diffusion_steps - 1).expand(images.shape[0])
        noisy = model.diffusion.q_sample(images, t)
    predictions, _ = model(noisy, learning=True, no_randomness=False)
    loss = sum(model.smooth_l1(prediction, images) for prediction in predictions)
    return hp.reconstruction_coeff * loss / len(predictions)


def reference_dit_loss(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The training part of their ``Diffusion_Transformer_IMG_Denoise.forward_loss_wrapper``."""
    t = torch.randint(0, model.hparams.diffusion_steps, (images.shape[0], ))
    losses = model.diffusion.training_losses(model.forward, images, t, dict(y=None))
    return losses['loss'].mean()


def reference_step(model: nn.Module, images: torch.Tensor, which: str) -> Callable[[], None]:
    loss_fn = reference_ebt_loss if which == 'ebt' else reference_dit_loss

    def step():
        loss_fn(model, images).backward()

    return step


# ----------------------------------------------------------------------------- timing
def build(args, name: str) -> nn.Module:
    torch.manual_seed(args.seed)
    owner, which = name.split('_')
    return build_ours(args, which) if owner == 'ours' else build_reference(args, which)


def make_step(name: str, model: nn.Module, images: torch.Tensor) -> Callable[[], None]:
    owner, which = name.split('_')
    return ours_step(model, images) if owner == 'ours' else reference_step(model, images, which)


def time_steps(steps: Dict[str, Callable[[], None]], models: Dict[str, nn.Module], repeats: int,
               warmup: int) -> Dict[str, List[float]]:
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            models[name].zero_grad(set_to_none=True)
            steps[name]()
    times = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            models[name].zero_grad(set_to_none=True)
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def step_flops(model: nn.Module, step: Callable[[], None]) -> int:
    """FLOPs of one step (torch's per-operator formulas, as tools/analysis/model_size.py)."""
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    from model_size import flops_of
    model.zero_grad(set_to_none=True)
    flops = flops_of(step)
    model.zero_grad(set_to_none=True)
    return flops


def gemm_rate(rows: int, width: int, hidden: int, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of this machine on the model's largest matrix product (the
    MLP's (tokens x width) @ (width x hidden)): the rate no step can beat on average."""
    a, b = torch.randn(rows, width), torch.randn(width, hidden)
    for _ in range(2):
        a @ b
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        best = min(best, (time.perf_counter() - start) / 5)
    return 2 * rows * width * hidden / best / 1e9


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def measure_memory_here(args) -> None:
    """Subprocess body: peak RSS growth of one step of one implementation, as JSON."""
    import resource
    torch.set_num_threads(args.threads)
    name = args.measure_memory
    model = build(args, name)
    images = torch.rand(args.batch_size, 3, args.img_size, args.img_size) * 2 - 1
    step = make_step(name, model, images)
    step()  # warm-up: parameter .grad buffers, allocator pools
    model.zero_grad(set_to_none=True)
    before = _rss_bytes()
    step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(name=name, peak_bytes=max(peak - before, 0))))


def profiled_peak_bytes(step: Callable[[], None]) -> int:
    """Peak bytes of tensors created during ``step`` (torch.profiler memory timeline)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        step()
    current = peak = 0
    for _, action, _, size in prof._memory_profile().timeline:
        if action == Action.CREATE:
            current += size
        elif action == Action.DESTROY:
            current -= size
        peak = max(peak, current)
    return peak


def measure_memory(args, name: str, model: nn.Module, step: Callable[[], None]):
    """``(MiB, method)``: profiler timeline in-process, else RSS growth in a subprocess."""
    model.zero_grad(set_to_none=True)
    try:
        return profiled_peak_bytes(step) / 2**20, 'profiler'
    except Exception:  # private profiler API: fall back to the RSS measurement
        return measure_memory_rss(args, name), 'rss'


def measure_memory_rss(args, name: str) -> Optional[float]:
    argv = [sys.executable, osp.abspath(__file__), '--measure-memory', name]
    for key in ('arch', 'img_size', 'patch_size', 'batch_size', 'mlp_ratio', 'steps', 'alpha',
                'threads', 'seed', 'reference_repo'):
        value = getattr(args, key)
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    result = subprocess.run(argv, capture_output=True, text=True)
    for line in result.stdout.splitlines()[::-1]:
        if line.startswith('{'):
            return json.loads(line)['peak_bytes'] / 2**20
    print(f'memory run of {name} failed:\n{result.stderr[-2000:]}', file=sys.stderr)
    return None


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


# ----------------------------------------------------------------------------- end to end
E2E_CONFIG = """_base_ = [{base!r}]
model = dict(backbone=dict(arch={arch!r}, img_size={img}, patch_size={patch}, mlp_ratio={mlp}),
             thinker=dict(num_steps={steps}, alpha={alpha}))
train_dataloader = dict(batch_size={batch})
optim_wrapper = dict(optimizer=dict(lr=1e-4))
train_cfg = dict(max_iters={iters}, val_interval=10**9)
default_hooks = dict(checkpoint=dict(interval=10**9), logger=dict(interval=1))
custom_hooks = []
# Each logged time is that iteration's own: MMEngine averages it over window_size
# iterations, which would carry the slow first iterations into every later value.
log_processor = dict(window_size=1)
"""
E2E_WARMUP = 3


def with_adamw(model: nn.Module, step: Callable[[], None]) -> Callable[[], None]:
    """``step`` followed by what the training configs' optimizer does: clip the gradient
    norm at 1.0, AdamW (lr 1e-4, weight decay 0.01), zero the gradients."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def full_step():
        step()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return full_step


def train_tool_seconds(args, env: Optional[Dict[str, str]] = None,
                       cfg_options: Sequence[str] = ()) -> List[float]:
    """Seconds of each timed ``tools/train.py`` iteration (MMEngine's own ``time``), with
    ``env`` added to the environment and ``cfg_options`` passed to ``--cfg-options``."""
    import tempfile
    if args.img_size != 64:
        raise SystemExit('error: --end-to-end trains on the 64 px quick-start crops; use '
                         '--img-size 64')
    with tempfile.TemporaryDirectory() as work:
        config = osp.join(work, 'e2e.py')
        with open(config, 'w') as f:
            f.write(E2E_CONFIG.format(
                base=osp.join(ROOT, 'configs', 'quickstart', 'ebt_denoise_skimage.py'),
                arch=args.arch, img=args.img_size, patch=args.patch_size, mlp=args.mlp_ratio,
                steps=args.steps, alpha=args.alpha, batch=args.batch_size, iters=args.iters))
        env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
        command = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
                   '--work-dir', osp.join(work, 'run')]
        if cfg_options:
            command += ['--cfg-options', *cfg_options]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f'error: tools/train.py failed:\n{result.stderr[-2000:]}')
        scalars = [osp.join(root, name) for root, _, names in os.walk(work)
                   for name in names if name == 'scalars.json']
        with open(scalars[0]) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    times = [row['time'] for row in rows if 'time' in row and 'loss' in row]
    return times[E2E_WARMUP:]


def end_to_end(args) -> None:
    """tools/train.py iterations vs bare steps with AdamW (ours, the reference's)."""
    print(f'end to end: tools/train.py ({args.iters} iterations, the first {E2E_WARMUP} '
          f'untimed; its own thread and OpenMP defaults) vs bare steps with AdamW '
          f'({args.threads} threads), EBT arch={args.arch}, {args.img_size} px, patch '
          f'{args.patch_size}, batch {args.batch_size}, mlp_ratio {args.mlp_ratio:g}, '
          f'{args.steps} thinking step(s)')
    names = ['ours_ebt'] + (['ref_ebt'] if args.reference_repo else [])
    models = {name: build(args, name) for name in names}
    torch.manual_seed(args.seed)
    images = torch.rand(args.batch_size, 3, args.img_size, args.img_size) * 2 - 1
    steps = {name: with_adamw(models[name], make_step(name, models[name], images))
             for name in names}
    bare = time_steps(steps, models, args.repeats, args.warmup)
    tool = train_tool_seconds(args)
    median = {name: statistics.median(values) for name, values in bare.items()}
    median['train.py'] = statistics.median(tool)
    labels = {'train.py': 'tools/train.py iteration', 'ours_ebt': 'ours, bare step + AdamW',
              'ref_ebt': 'theirs, step + AdamW'}
    print(f'{"":<28}{"s/iter median":>15}{"min":>9}')
    for name, values in [('train.py', tool)] + [(n, bare[n]) for n in names]:
        print(f'{labels[name]:<28}{median[name]:15.3f}{min(values):9.3f}')
    overhead = median['train.py'] / median['ours_ebt'] - 1
    print(f'tools/train.py vs our bare step: {100 * overhead:+.1f} %')
    if 'ref_ebt' in median:
        print(f'end-to-end speed-up vs reference: {median["ref_ebt"] / median["train.py"]:.2f}x')


#: What ``--defaults`` tries against tools/train.py's own defaults (one change each).
DEFAULT_VARIANTS = (
    ('defaults (1 data worker, all cores, OpenMP default)', {}, ()),
    ('data in the main process (num_workers=0)', {},
     ('train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False')),
    ('1 thread (OMP_NUM_THREADS=1)', dict(OMP_NUM_THREADS='1'), ()),
    ('OMP_WAIT_POLICY=PASSIVE', dict(OMP_WAIT_POLICY='PASSIVE'), ()),
)


def compare_defaults(args) -> None:
    """tools/train.py under its defaults and under each alternative, for every arch of
    ``--archs``: the measurements the defaults were chosen from."""
    print(f'tools/train.py s/iter (median of {args.iters - E2E_WARMUP} iterations after '
          f'{E2E_WARMUP}), EBT {args.img_size} px, patch {args.patch_size}, batch '
          f'{args.batch_size}, mlp_ratio {args.mlp_ratio:g}, {args.steps} thinking step(s), '
          f'{os.cpu_count()} logical CPUs; relative to the defaults')
    header = f'{"variant":<52}' + ''.join(f'{arch:>16}' for arch in args.archs)
    print(header)
    results = {}
    for arch in args.archs:
        arch_args = argparse.Namespace(**{**vars(args), 'arch': arch})
        for label, env, options in DEFAULT_VARIANTS:
            results[label, arch] = statistics.median(
                train_tool_seconds(arch_args, env, options))
    for label, _, _ in DEFAULT_VARIANTS:
        cells = []
        for arch in args.archs:
            seconds, base = results[label, arch], results[DEFAULT_VARIANTS[0][0], arch]
            cells.append(f'{seconds:.3f} ({seconds / base - 1:+.0%})')
        print(f'{label:<52}' + ''.join(f'{cell:>16}' for cell in cells))


@exit_on_missing_extra
def main(argv=None) -> None:
    args = parse_args(argv)
    if args.measure_memory:
        measure_memory_here(args)
        return
    torch.set_num_threads(args.threads)
    if args.end_to_end:
        end_to_end(args)
        return
    if args.defaults:
        compare_defaults(args)
        return
    names = list(args.only or IMPLEMENTATIONS)
    if args.reference_repo is None:
        names = [name for name in names if not name.startswith('ref')]

    arch = arch_settings(args.arch)
    tokens = (args.img_size // args.patch_size)**2
    print(f'config: arch={args.arch} (depth {arch["depth"]}, heads {arch["num_heads"]}, '
          f'width {arch["embed_dims"]}), mlp_ratio={args.mlp_ratio:g}, img {args.img_size}px, '
          f'patch {args.patch_size} ({tokens} tokens), batch {args.batch_size}, '
          f'EBT thinking steps {args.steps}, alpha {args.alpha:g}, float32')
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()} '
          f'(interop {torch.get_num_interop_threads()}), {cpu_name()}, '
          f'{os.cpu_count()} logical CPUs, Python {platform.python_version()}')
    print('step = loss (EBT: energy forward, dE/dx with create_graph, update, smooth-L1 '
          'loss) + loss.backward(); no optimiser step; zero-initialised weights '
          're-drawn from N(0, 0.02)')
    print(f'timing: {args.warmup} warm-up steps per model, then {args.repeats} interleaved '
          'rounds; median (min) seconds per step')

    models = {name: build(args, name) for name in names}
    torch.manual_seed(args.seed)
    images = torch.rand(args.batch_size, 3, args.img_size, args.img_size) * 2 - 1
    steps = {name: make_step(name, models[name], images) for name in names}
    times = time_steps(steps, models, args.repeats, args.warmup)
    memory = {name: (None, None) if args.no_memory else measure_memory(
        args, name, models[name], steps[name]) for name in names}

    flops = {name: step_flops(models[name], steps[name]) for name in names}
    rate = gemm_rate(args.batch_size * tokens, arch['embed_dims'],
                     int(arch['embed_dims'] * args.mlp_ratio))
    median = {name: statistics.median(values) for name, values in times.items()}
    labels = dict(ours_ebt='ours  EBT', ours_dit='ours  DiT', ref_ebt='theirs EBT',
                  ref_dit='theirs DiT')
    print()
    print(f'{"implementation":<16}{"s/step median":>15}{"min":>9}{"peak MiB":>10}'
          f'{"GFLOP/step":>12}{"GFLOP/s":>9}{"floor s":>9}')
    for name in names:
        mem = memory[name][0]
        mem_text = f'{mem:10.0f}' if mem is not None else f'{"-":>10}'
        print(f'{labels[name]:<16}{median[name]:15.3f}{min(times[name]):9.3f}{mem_text}'
              f'{flops[name] / 1e9:12.1f}{flops[name] / 1e9 / median[name]:9.0f}'
              f'{flops[name] / 1e9 / rate:9.3f}')
    print(f'floor = GFLOP/step at this machine\'s best float32 matrix-product rate, '
          f'{rate:.0f} GFLOP/s ({args.batch_size * tokens} x {arch["embed_dims"]} @ '
          f'{arch["embed_dims"]} x {int(arch["embed_dims"] * args.mlp_ratio)}): no step of '
          'these FLOPs can be faster')
    for which in ('ebt', 'dit'):
        if f'ours_{which}' in median and f'ref_{which}' in median:
            print(f'largest speed-up possible vs theirs at equal FLOPs, {which.upper()}: '
                  f'{median[f"ref_{which}"] / (flops[f"ours_{which}"] / 1e9 / rate):.2f}x '
                  '(theirs / our floor)')
    print()
    for owner, label in (('ours', 'ours'), ('ref', 'theirs')):
        if f'{owner}_ebt' in median and f'{owner}_dit' in median:
            print(f'EBT / DiT ({label}): {median[f"{owner}_ebt"] / median[f"{owner}_dit"]:.2f}x')
    for which in ('ebt', 'dit'):
        if f'ours_{which}' in median and f'ref_{which}' in median:
            print(f'speed-up ours vs theirs, {which.upper()}: '
                  f'{median[f"ref_{which}"] / median[f"ours_{which}"]:.2f}x '
                  f'(theirs / ours, medians)')
    methods = {method for _, method in memory.values() if method}
    if 'profiler' in methods:
        print('peak MiB = peak bytes of the tensors allocated during one step (torch.profiler '
              'memory timeline; weights excluded, parameter gradients included)')
    if 'rss' in methods:
        print('peak MiB (rss) = peak RSS growth during one step in a fresh subprocess')
    print('all times per round (s): ' +
          json.dumps({name: [round(v, 3) for v in values] for name, values in times.items()}))


if __name__ == '__main__':
    main()
