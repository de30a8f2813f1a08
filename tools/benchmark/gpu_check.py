"""Paper configs trained at their real size on a GPU: speed, memory, finite, fused = plain.

    python tools/benchmark/gpu_check.py [--configs CONFIG[:INPUTS] ...] [--precisions fp32 bf16]
        [--iters 5] [--warmup 2] [--batch-size N] [--seed 0] [--json FILE]
        [--device cuda|cpu] [--tiny]

On a GPU machine, from the repository root (nothing is downloaded, no dataset is read):

    python tools/benchmark/gpu_check.py --json work_dirs/gpu_check.json

Each config's model is built through the registry from the real config, at its real size
and batch per GPU (``train_dataloader.batch_size``), and trained for ``--warmup`` untimed
then ``--iters`` timed iterations of ``model.train_step`` on one synthetic random batch
(``ebtvision/utils/synthetic_batch.py``): data preprocessor, loss (for an EBT through the
thinking loop, second order), backward, gradient clipping and the config's AdamW step,
with the optimizer wrapper ``tools/train.py`` uses (the finite-checking one; for bf16 the
mixed-precision one of ``--amp --amp-dtype bfloat16``: autocast). Learning rates are the
configs' peak rates (no warm-up schedule). All-zero weights (adaLN-Zero, zero-initialised
output layers) are re-drawn from N(0, 0.02) first, so that no gradient is trivially zero.

The SSv2 models keep their frozen SD-VAE: the real sd-vae-ft-mse architecture
(``FrozenVAEEncoder(pretrained=None, vae_cfg='sd')``) with random weights, which cost the
same as the real ones. Inputs per config: ``CONFIG:images`` (denoisers), ``CONFIG:pixels``
(uint8 frames encoded by the VAE in every step, as on-the-fly training) and
``CONFIG:latents`` (latents fed directly, as training from the latent cache);
``CONFIG:pixels,latents`` runs both. Without ``:INPUTS``: images for a denoiser, latents
for a config that trains from the latent cache (``*_cached``), both for other next-frame
configs. Default checks: the COCO large EBT and DiT (128 px), the SSv2 xxs EBT on the fly
and from the cache, the S2 EBT from the cache, and the Transformer++ both ways.

Rows: every check in every precision (``fp32``; ``bf16`` autocast) and kernel:

* EBT / DiT denoisers: ``fused`` = ``backbone.fused=True`` (the hand-derived fused adaLN
  block; under autocast it runs its functional reference instead, same math in plain
  ops), ``plain`` = ``fused=False`` (the modules; PyTorch's SDPA kernels where training is
  first order, the DiT's).
* Transformer++: the causal backbones have no fused block; its equivalent is the
  attention kernel: ``fused`` = PyTorch's fused SDPA kernels (what its first-order training
  picks), ``plain`` = SDPA's math backend.
* causal EBT: ``math`` only: its second-order training always runs attention on the math
  backend and its Llama blocks have no fused node, so there is nothing to compare.

Per row: iterations per second over the timed iterations, peak memory
(``torch.cuda.max_memory_allocated`` over the row's iterations: weights, gradients, AdamW
state, activations; not measured on CPU), whether every loss was finite, and whether fused
equals plain: from the same weights, batch and random draws, one loss and full gradient per
kernel, compared as ``|loss_f - loss_p| / |loss_p|`` and ``||g_f - g_p|| / ||g_p||``:
within 1e-3 in fp32; in bf16 within twice the plain kernel's own bf16-vs-fp32 difference
(at least 1e-2), since each kernel rounds in other places. The bf16 pair is compared at
the weights the fp32 rows left. A markdown table, then one line:
``verdict: PASS ...`` or ``verdict: FAIL ...``; exit code 0 / 1. A row that raises (out of
memory, a non-finite loss stopping the wrapper) is reported as failed and the others still
run (``EBTVISION_DEBUG=1`` re-raises instead).

Budget on one H200 (an estimate from the FLOPs of ``tools/analysis/model_size.py``, not a
measurement): the large EBT step is 34 TFLOPs, the DiT's 17, at ~40 TFLOP/s in float32
(no TF32 for matmuls, PyTorch's default) about 0.9 s and 0.45 s per iteration, a few times
faster in bf16; on-the-fly SSv2 iterations encode 16 x 17 frames (207 GFLOPs each) in
well under a second. With the defaults (2 warm-up + 5 timed iterations per row, 22 rows)
about 2-4 minutes in all, model building and CUDA start-up included.

On CPU, ``--device cpu --tiny`` shrinks every config (2 layers of width 64, 32 px images
and frames, 5-frame clips, a 4-level VAE of the SD-VAE's structure with 8-16 channels,
batch 2) and runs the same rows in about 15 s on 2 cores (imports included; one
thread); bf16 autocast on CPU is real.
"""
import copy
import gc
import json
import logging
import math
import os.path as osp
import platform
import sys
import time
import traceback
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable, ContextManager, Dict, List, Optional, Tuple

import torch
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from ebtvision.utils.synthetic_batch import KINDS, synthetic_batch  # noqa: E402
from parity_families.common import perturb_zero_weights  # noqa: E402

from ebtvision.utils import (ArgumentParser, debugging, exit_with_error,  # noqa: E402
                             read_config, register_all_modules)

DEFAULT_CHECKS = (
    'configs/ebt_coco_denoise.py',
    'configs/dit_coco_denoise.py',
    'configs/ebt_ssv2_nextframe.py:pixels',
    'configs/ebt_ssv2_nextframe_cached.py',
    'configs/ebt_ssv2_nextframe_s2.py:latents',
    'configs/transformerpp_ssv2_nextframe.py',
)
PRECISIONS = ('fp32', 'bf16')
#: Largest relative difference of loss and gradient between fused and plain in float32,
#: where only the order of operations differs (measured: 1e-7 on the --tiny models).
FP32_TOLERANCE = 1e-3
#: bfloat16 keeps 8 mantissa bits (relative rounding 4e-3 per operation), rounded in
#: different places by each kernel: the tolerance is twice the plain kernel's own
#: bfloat16-vs-float32 difference, never below this.
BF16_MIN_TOLERANCE = 1e-2

# --tiny: what every config shrinks to (CPU smoke runs).
TINY_ARCH = dict(depth=2, num_heads=2, embed_dims=64)
TINY_IMG_SIZE, TINY_PATCH_SIZE = 32, 8
TINY_FRAME_SIZE, TINY_CLIP_LEN = 32, 5
TINY_BATCH = 2


def tiny_vae_cfg() -> dict:
    """The SD-VAE's structure (4 levels, downsampling 8, 2 layers per block, mid-block
    attention) with 8-16 channels instead of 128-512."""
    from ebtvision.models.encoders import SD_VAE_ARCH
    return dict(SD_VAE_ARCH, block_out_channels=(8, 16, 16, 16), norm_num_groups=4)


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', default=None, metavar='CONFIG[:INPUTS]',
                        help='configs to check, each optionally with its inputs (images, '
                        'pixels, latents; comma-separated); default: the paper configs')
    parser.add_argument('--precisions', nargs='+', choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument('--iters', type=int, default=5, help='timed iterations per row')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations per row')
    parser.add_argument('--batch-size', type=int, default=None,
                        help="batch (default: the config's train_dataloader batch per GPU; "
                        f'{TINY_BATCH} with --tiny)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', choices=('cuda', 'cpu'), default=None,
                        help='default: cuda (an error without one)')
    parser.add_argument('--tiny', action='store_true',
                        help='shrink every config (CPU smoke run: --device cpu --tiny)')
    parser.add_argument('--json', help='also write the rows and the verdict to this file')
    args = parser.parse_args(argv)
    if args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    if args.warmup < 0:
        parser.error(f'--warmup must be >= 0, got {args.warmup}')
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def pick_device(args) -> torch.device:
    if args.device in (None, 'cuda') and not torch.cuda.is_available():
        exit_with_error('CUDA is not available: this check trains the paper configs at their '
                        'real size on a GPU; on a CPU run the shrunk configs with '
                        '--device cpu --tiny')
    if args.device == 'cpu' and not args.tiny:
        exit_with_error('--device cpu trains the paper sizes for hours; add --tiny for the '
                        'shrunk configs')
    return torch.device(args.device or 'cuda')


# ----------------------------------------------------------------------------- the plan
@dataclass
class Check:
    """One config with one kind of input."""
    config: str
    cfg: object
    task: str
    inputs: str


def split_spec(spec: str) -> Tuple[str, Optional[List[str]]]:
    """``CONFIG[:INPUTS]`` -> (config path, input kinds or None)."""
    path, sep, kinds = spec.rpartition(':')
    if sep and kinds and all(kind in sum(KINDS.values(), ()) for kind in kinds.split(',')):
        return path, kinds.split(',')
    return spec, None


def trains_from_cache(cfg) -> bool:
    dataset = cfg.get('train_dataloader', {}).get('dataset', {}) or {}
    return 'LatentClip' in str(dataset.get('type', ''))


def model_task(cfg, config: str) -> str:
    from ebtvision.models import BaseDenoiser, NextFramePredictor
    from ebtvision.registry import MODELS
    model_type = cfg.get('model', {}).get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if isinstance(cls, type) and issubclass(cls, BaseDenoiser):
        return 'denoise'
    if isinstance(cls, type) and issubclass(cls, NextFramePredictor):
        return 'next_frame'
    exit_with_error(f'{config}: model type {model_type!r} is not a denoiser or a next-frame '
                    'model; this check covers the image and video configs')


def plan(specs: List[str]) -> List[Check]:
    """Read every config first, so that a mistake stops the run before any training."""
    checks = []
    for spec in specs:
        path, kinds = split_spec(spec)
        if not osp.isfile(path) and osp.isfile(osp.join(ROOT, path)):
            path = osp.join(ROOT, path)
        cfg = read_config(path)
        task = model_task(cfg, path)
        if kinds is None:
            kinds = (['latents'] if trains_from_cache(cfg) else list(KINDS[task])) \
                if task == 'next_frame' else list(KINDS[task])
        for kind in kinds:
            if kind not in KINDS[task]:
                exit_with_error(f'{path}: a {task.replace("_", "-")} model takes '
                                f'{" or ".join(KINDS[task])} inputs, not {kind}')
            checks.append(Check(path, cfg, task, kind))
    return checks


def prepare(cfg, task: str, tiny: bool):
    """A copy of ``cfg`` whose SD-VAE has random weights (no download) and, with
    ``tiny``, whose sizes are shrunk."""
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    encoder = model.get('encoder')
    if encoder and encoder.get('type') == 'FrozenVAEEncoder':
        encoder.update(pretrained=None, subfolder=None,
                       vae_cfg=tiny_vae_cfg() if tiny else 'sd')
    if not tiny:
        return cfg
    model.backbone.arch = dict(TINY_ARCH)
    if task == 'denoise':
        model.backbone.update(img_size=TINY_IMG_SIZE, patch_size=TINY_PATCH_SIZE)
    else:
        model.frame_size = TINY_FRAME_SIZE
        cfg.train_dataloader.dataset.clip_len = TINY_CLIP_LEN
    return cfg


# ----------------------------------------------------------------------------- building
@contextmanager
def quiet_mmengine():
    """mmengine logs a line per weight from init_weights and per frozen VAE weight the
    optimizer leaves out: keep the output to the table."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def build_model(cfg, device: torch.device, seed: int) -> nn.Module:
    from ebtvision.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    with quiet_mmengine():
        model.init_weights()  # what the runner does before training
    perturb_zero_weights(model)
    return model.to(device).train()


def build_optim_wrapper(model: nn.Module, cfg, precision: str, device: torch.device):
    """The config's optimizer wrapper as ``tools/train.py`` builds it (``--amp
    --amp-dtype bfloat16`` for bf16), with its non-finite checks."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper as build

    from ebtvision.engine import enable_divergence_checks
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    if precision == 'bf16':
        optim_cfg.update(type='AmpOptimWrapper', dtype='bfloat16')
    optim_cfg = enable_divergence_checks(Config(dict(optim_wrapper=optim_cfg))).optim_wrapper
    with quiet_mmengine():
        wrapper = build(model, optim_cfg)
    if getattr(wrapper, 'device_type', device.type) != device.type:
        # The AMP wrapper autocasts on mmengine's device (CUDA when present); a --device
        # cpu run on a GPU machine must autocast on the CPU (bf16: no loss scaler to move).
        wrapper.device_type = device.type
    return wrapper


@contextmanager
def adaln_fused(model: nn.Module, fused: bool):
    """Every adaLN block of the model fused (or not) for the duration."""
    from ebtvision.models.layers import AdaLNBlock
    blocks = [module for module in model.modules() if isinstance(module, AdaLNBlock)]
    before = [block.fused for block in blocks]
    for block in blocks:
        block.fused = fused
    try:
        yield
    finally:
        for block, value in zip(blocks, before):
            block.fused = value


def math_attention() -> ContextManager:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel(SDPBackend.MATH)


def kernels(model: nn.Module) -> Dict[str, Callable[[], ContextManager]]:
    """The kernel variants of a model's training (see the module docstring)."""
    from ebtvision.models.backbones import CausalTransformer
    from ebtvision.models.layers import AdaLNBlock
    if any(isinstance(module, AdaLNBlock) for module in model.backbone.modules()):
        return dict(fused=lambda: adaln_fused(model, True),
                    plain=lambda: adaln_fused(model, False))
    if isinstance(model.backbone, CausalTransformer) and not model.backbone.SECOND_ORDER:
        return dict(fused=nullcontext, plain=math_attention)
    return dict(math=nullcontext)


# ----------------------------------------------------------------------------- measuring
@dataclass
class Row:
    config: str
    inputs: str
    batch: int
    precision: str
    kernel: str
    it_per_s: Optional[float] = None
    peak_gib: Optional[float] = None
    losses: List[float] = field(default_factory=list)
    #: fused vs plain: loss_rel, grad_rel, tolerance (bf16: bf16_noise), equal; or
    #: equal=False and the error of the comparison. None: no pair to compare.
    agreement: Optional[dict] = None
    error: Optional[str] = None

    @property
    def finite(self) -> bool:
        return bool(self.losses) and self.error is None and all(
            math.isfinite(loss) for loss in self.losses)

    @property
    def ok(self) -> bool:
        return self.finite and (self.agreement is None or self.agreement['equal'])


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def loss_and_gradient(model: nn.Module, batch: dict, kernel, precision_context, seed: int
                      ) -> Tuple[float, torch.Tensor]:
    """One training loss and the flat gradient of every trainable weight (no update)."""
    params = [param for param in model.parameters() if param.requires_grad]
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same noise, timesteps and initial candidates
    with kernel():
        with precision_context():
            data = model.data_preprocessor(batch, True)
            loss, _ = model.parse_losses(model(**data, mode='loss'))
        loss.backward()
    grad = torch.cat([(param.grad if param.grad is not None else torch.zeros_like(param))
                      .detach().float().flatten() for param in params])
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), grad


def relative(a, b) -> float:
    if isinstance(a, torch.Tensor):
        return float((a - b).norm() / b.norm().clamp_min(1e-30))
    return abs(a - b) / max(abs(b), 1e-30)


def compare_kernels(model: nn.Module, wrapper, batch: dict, variants: dict, precision: str,
                    seed: int) -> dict:
    """Loss and gradient of ``fused`` vs ``plain`` from the same weights and draws.

    float32: both within :data:`FP32_TOLERANCE`. bfloat16 rounds differently in each
    kernel, by an amount that depends on the model and its weights: the difference must
    stay within twice what bfloat16 itself moves the plain kernel's loss and gradient
    away from its float32 ones (at least :data:`BF16_MIN_TOLERANCE`).
    """
    autocast = lambda: wrapper.optim_context(model)  # noqa: E731  autocast in bf16
    loss_f, grad_f = loss_and_gradient(model, batch, variants['fused'], autocast, seed)
    loss_p, grad_p = loss_and_gradient(model, batch, variants['plain'], autocast, seed)
    result = dict(loss_rel=relative(loss_f, loss_p), grad_rel=relative(grad_f, grad_p))
    del grad_f
    if precision == 'fp32':
        result['tolerance'] = FP32_TOLERANCE
    else:
        loss_32, grad_32 = loss_and_gradient(model, batch, variants['plain'], nullcontext, seed)
        noise = max(relative(loss_p, loss_32), relative(grad_p, grad_32))
        result.update(bf16_noise=noise, tolerance=max(BF16_MIN_TOLERANCE, 2 * noise))
    values = (result['loss_rel'], result['grad_rel'])
    result['equal'] = all(math.isfinite(value) and value <= result['tolerance']
                          for value in values)
    return result


def time_iterations(row: Row, model: nn.Module, wrapper, batch: dict, kernel, warmup: int,
                    iters: int, device: torch.device) -> None:
    """``warmup`` + ``iters`` training iterations; fills the row's speed, memory, losses."""
    losses = []
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    with kernel():
        for index in range(warmup + iters):
            if index == warmup:
                synchronize(device)
                start = time.perf_counter()
            log_vars = model.train_step(batch, wrapper)
            losses.append(log_vars['loss'].detach())  # no sync: read after the timing
        synchronize(device)
    row.it_per_s = iters / (time.perf_counter() - start)
    if device.type == 'cuda':
        row.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
    row.losses = [float(loss) for loss in losses]


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0][:160] if text else ""}'


def guarded(call: Callable[[], object]) -> Tuple[object, Optional[str]]:
    """``(call(), None)``, or ``(None, what went wrong)`` with the traceback on stderr:
    one failing row (out of memory, divergence) must not cost the others' results."""
    try:
        return call(), None
    except Exception as error:  # noqa: BLE001
        if debugging():
            raise
        traceback.print_exc()
        return None, describe(error)


def run_precision(model: nn.Module, cfg, batch: dict, variants: dict, rows: List[Row],
                  precision: str, args, device: torch.device) -> None:
    """Fill ``rows`` (one per kernel) of one precision: the comparison, then the timing."""
    wrapper, error = guarded(lambda: build_optim_wrapper(model, cfg, precision, device))
    if error is None and len(variants) == 2:
        agreement, failed = guarded(lambda: compare_kernels(model, wrapper, batch, variants,
                                                            precision, args.seed))
        for row in rows:
            row.agreement = agreement or dict(equal=False, error=failed)
    for row in rows:
        if error is not None:
            row.error = error
            continue
        _, row.error = guarded(lambda: time_iterations(
            row, model, wrapper, batch, variants[row.kernel], args.warmup, args.iters, device))
    model.zero_grad(set_to_none=True)
    wrapper = None  # AdamW's state: the next precision starts its own
    release(device)


def release(device: torch.device) -> None:
    """Hand freed memory back, so that each row's peak and a failed row's leftovers do
    not carry over to the next."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def run_check(check: Check, args, device: torch.device) -> List[Row]:
    cfg = prepare(check.cfg, check.task, args.tiny)
    batch_size = args.batch_size or (TINY_BATCH if args.tiny else
                                     int(cfg.train_dataloader.batch_size))
    name = osp.basename(check.config)

    def build():
        model = build_model(cfg, device, args.seed)
        batch = synthetic_batch(model, cfg, batch_size, check.inputs, device, args.seed)
        return model, batch, kernels(model)

    built, error = guarded(build)
    if error is not None:
        return [Row(name, check.inputs, batch_size, precision, '-', error=error)
                for precision in args.precisions]
    model, batch, variants = built
    rows = []
    for precision in args.precisions:
        pair = [Row(name, check.inputs, batch_size, precision, kernel) for kernel in variants]
        run_precision(model, cfg, batch, variants, pair, precision, args, device)
        rows += pair
    del built, model, batch, variants
    release(device)
    return rows


# ----------------------------------------------------------------------------- report
INPUT_LABELS = dict(images='images', pixels='frames -> VAE', latents='latents (cache)')


def agreement_text(agreement: Optional[dict]) -> str:
    if agreement is None:
        return 'n/a'
    if 'error' in agreement:
        return 'NO (the comparison failed)'
    verdict = 'yes' if agreement['equal'] else 'NO'
    return (f"{verdict} (loss {agreement['loss_rel']:.1e}, grad {agreement['grad_rel']:.1e}; "
            f"tol {agreement['tolerance']:.1e})")


def finite_text(row: Row) -> str:
    if row.error is not None:
        return 'error'
    bad = sum(not math.isfinite(loss) for loss in row.losses)
    return f'yes ({len(row.losses)})' if not bad else f'NO ({bad} of {len(row.losses)})'


def table(rows: List[Row]) -> str:
    lines = ['| config | inputs | batch | precision | kernel | it/s | peak GiB | '
             'losses finite | fused = plain (rel. diff.) |',
             '|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        speed = f'{row.it_per_s:.3g}' if row.it_per_s is not None else '-'
        memory = f'{row.peak_gib:.2f}' if row.peak_gib is not None else '-'
        lines.append(f'| {row.config} | {INPUT_LABELS.get(row.inputs, row.inputs)} | '
                     f'{row.batch} | {row.precision} | {row.kernel} | {speed} | {memory} | '
                     f'{finite_text(row)} | {agreement_text(row.agreement)} |')
    return '\n'.join(lines)


def verdict(rows: List[Row]) -> str:
    failed = [row for row in rows if not row.ok]
    if not failed:
        return (f'verdict: PASS: {len(rows)} rows, every loss finite, fused = plain in every '
                'pair')
    names = '; '.join(f'{row.config} {row.inputs} {row.precision} {row.kernel}: ' + (
        row.error or ('non-finite loss' if not row.finite else 'fused != plain'))
        for row in failed)
    return f'verdict: FAIL: {len(failed)} of {len(rows)} rows: {names}'


def device_name(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    args = parse_args(argv)
    device = pick_device(args)
    if args.tiny and device.type == 'cpu':
        # Tiny tensors gain nothing from intra-op threads, which thrash on a busy machine.
        torch.set_num_threads(1)
    register_all_modules()
    # A logger of our own becomes MMEngine's current one: init_weights writes to the
    # current logger's handlers, and a file handler closed by an earlier run in this
    # process (a test session) would make it fail.
    from mmengine.logging import MMLogger
    MMLogger.get_instance(f'gpu_check_{time.time_ns()}', log_level='WARNING')
    checks = plan(args.configs or [osp.join(ROOT, path) for path in DEFAULT_CHECKS])
    if 'bf16' in args.precisions and device.type == 'cuda':
        from ebtvision.engine import check_amp_dtype
        try:
            check_amp_dtype('bfloat16', 'cuda')
        except ValueError as error:
            exit_with_error(f'{error} (run --precisions fp32)')

    print(f'{device_name(device)} ({device.type}), torch {torch.__version__}, '
          f'{"--tiny shrunk configs" if args.tiny else "real sizes"}, '
          f'{args.warmup} warm-up + {args.iters} timed iterations per row', flush=True)
    start = time.perf_counter()
    rows: List[Row] = []
    for check in checks:
        began = time.perf_counter()
        rows += run_check(check, args, device)
        print(f'{osp.basename(check.config)} ({check.inputs}): '
              f'{time.perf_counter() - began:.1f} s', file=sys.stderr, flush=True)
    print()
    print(table(rows))
    print()
    print('it/s: timed train_step iterations (loss, backward, clipping, AdamW) per second; '
          'peak GiB: torch.cuda.max_memory_allocated over the row; fused = plain: '
          '|loss_f - loss_p| / |loss_p| and ||g_f - g_p|| / ||g_p|| from the same weights '
          f'and draws; tol: {FP32_TOLERANCE:g} in fp32, in bf16 twice the plain kernel\'s '
          f'bf16-vs-fp32 difference (>= {BF16_MIN_TOLERANCE:g}).')
    print(f'total {time.perf_counter() - start:.1f} s')
    line = verdict(rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(device=device_name(device), device_type=device.type,
                           torch=torch.__version__, tiny=args.tiny, warmup=args.warmup,
                           iters=args.iters,
                           rows=[dict(asdict(row), finite=row.finite, ok=row.ok)
                                 for row in rows],
                           passed=all(row.ok for row in rows), verdict=line), f, indent=1)
    print(line)
    return 0 if all(row.ok for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
