"""On-disk cache of frozen-backbone features for linear probes.

Layout under ``cache_dir`` for one split and one key (see :func:`feature_cache_key`)::

    <split>_<key>.pth            complete cache: features in dataset order
    <split>_<key>.parts/         extraction in progress
        chunk_00000.pth          one chunk every ``chunk_batches`` batches (all ranks)

Every file is written atomically and holds tensors and plain Python values only, so it
loads with ``torch.load(weights_only=True)``. A complete file is::

    dict(version=1, key=str, num_samples=int,
         features=FloatTensor (N, D), gt_label=LongTensor (N,),
         metainfo=list[dict] (plain values only) or None (train split), indices=LongTensor (N,))

A chunk holds the same fields for the dataset ``indices`` it covers (any order). Chunks
written for another key are never read: the key is in the folder name and in each file.
"""
import glob
import hashlib
import io
import json
import os
import os.path as osp
import shutil
from typing import Any, Dict, List, Optional

import torch

from ebtvision.fileio import atomic_write

CACHE_VERSION = 1


def _jsonable(obj: Any) -> Any:
    """Config values (ConfigDict, tuples, types) as JSON, for a stable hash."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, type):
        return f'{obj.__module__}.{obj.__qualname__}'
    return repr(obj)


def feature_cache_key(checkpoint: Optional[str], dataset_cfg: Any, model_cfg: Any,
                      extra: Any = None) -> str:
    """Hash of everything the cached features depend on.

    Args:
        checkpoint: Checkpoint path (its absolute path, mtime and size go into the hash,
            so a retrained checkpoint at the same path gets a new key), or None.
        dataset_cfg: Dataset config (root, split, pipeline...).
        model_cfg: Backbone/model config (the classifier head is left to the caller).
        extra: Anything else that changes features (e.g. the seed of a random init).

    Returns:
        A 16-hex-digit key.
    """
    ckpt: Any = None
    if checkpoint:
        path = osp.abspath(osp.expanduser(str(checkpoint)))
        stat = os.stat(path) if osp.exists(path) else None
        ckpt = [path, stat.st_mtime_ns if stat else None, stat.st_size if stat else None]
    payload = json.dumps(
        dict(version=CACHE_VERSION, checkpoint=ckpt, dataset=_jsonable(dataset_cfg),
             model=_jsonable(model_cfg), extra=_jsonable(extra)), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plain_metainfo(metainfo: Dict[str, Any]) -> Dict[str, Any]:
    """Keep the metainfo values a weights-only load can rebuild (tensors -> Python)."""

    def convert(value):
        if isinstance(value, torch.Tensor):
            return value.item() if value.numel() == 1 else value.tolist()
        if hasattr(value, 'tolist') and not isinstance(value, (str, bytes)):  # numpy
            return value.tolist()
        if isinstance(value, (list, tuple)):
            items = [convert(v) for v in value]
            return None if any(v is _DROP for v in items) else type(value)(items)
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        return _DROP

    out = {}
    for key, value in metainfo.items():
        value = convert(value)
        if value is not _DROP and value is not None:
            out[key] = value
    return out


_DROP = object()


def _save(obj: dict, path: str) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getvalue(), path)


def _load(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


class FeatureCache:
    """Cached features of one split for one key (checkpoint + data + model).

    Args:
        cache_dir: Folder of the cache files.
        split: Split name used in file names ('train', 'test').
        key: From :func:`feature_cache_key`.
    """

    def __init__(self, cache_dir: str, split: str, key: str) -> None:
        self.cache_dir = cache_dir
        self.split = split
        self.key = key
        self.path = osp.join(cache_dir, f'{split}_{key}.pth')
        self.parts_dir = osp.join(cache_dir, f'{split}_{key}.parts')

    def is_complete(self) -> bool:
        return osp.isfile(self.path)

    def load(self) -> dict:
        """Load the complete cache (raises if it was written for another key)."""
        data = _load(self.path)
        if data.get('key') != self.key or data.get('version') != CACHE_VERSION:
            raise RuntimeError(f'feature cache {self.path} belongs to another key/version; '
                               'delete it')
        return data

    def chunk_paths(self) -> List[str]:
        return sorted(glob.glob(osp.join(self.parts_dir, 'chunk_*.pth')))

    def load_chunks(self) -> List[dict]:
        """Chunks of an interrupted extraction (only whole files exist: writes are atomic)."""
        chunks = []
        for path in self.chunk_paths():
            chunk = _load(path)
            if chunk.get('key') != self.key:
                raise RuntimeError(f'{path} belongs to another feature cache; delete it')
            chunks.append(chunk)
        return chunks

    def write_chunk(self, number: int, indices: torch.Tensor, features: torch.Tensor,
                    gt_label: torch.Tensor, metainfo: List[dict]) -> None:
        _save(dict(version=CACHE_VERSION, key=self.key, indices=indices, features=features,
                   gt_label=gt_label, metainfo=metainfo),
              osp.join(self.parts_dir, f'chunk_{number:05d}.pth'))

    def finalize(self, num_samples: int) -> dict:
        """Merge the chunks into the complete file in dataset order; remove the chunks.

        Raises:
            RuntimeError: Some dataset index was never extracted.
        """
        chunks = self.load_chunks()
        if not chunks:
            raise RuntimeError(f'no feature chunks in {self.parts_dir}')
        dim = chunks[0]['features'].shape[1]
        features = torch.zeros(num_samples, dim, dtype=chunks[0]['features'].dtype)
        gt_label = torch.full((num_samples, ), -1, dtype=torch.long)
        keep_meta = chunks[0].get('metainfo') is not None
        metainfo: Optional[List[Optional[dict]]] = [None] * num_samples if keep_meta else None
        seen = torch.zeros(num_samples, dtype=torch.bool)
        for chunk in chunks:
            idx = chunk['indices']
            features[idx] = chunk['features']
            gt_label[idx] = chunk['gt_label']
            seen[idx] = True
            if keep_meta:
                for i, meta in zip(idx.tolist(), chunk['metainfo']):
                    metainfo[i] = meta
        if not bool(seen.all()):
            missing = (~seen).nonzero().flatten()[:5].tolist()
            raise RuntimeError(f'feature cache {self.split}: samples {missing}... missing')
        data = dict(version=CACHE_VERSION, key=self.key, num_samples=num_samples,
                    features=features, gt_label=gt_label, metainfo=metainfo,
                    indices=torch.arange(num_samples))
        _save(data, self.path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return data
