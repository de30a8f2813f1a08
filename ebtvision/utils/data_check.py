"""Fail early, with one clear message, when a config's data is not where it says."""
import os.path as osp
from typing import Iterator, List, Tuple

from mmengine.config import Config

from ebtvision.datasets.file_listing import PACKAGED_DATA

# data_root values that name data shipped inside a package rather than a folder.
PACKAGED_DATA_PREFIXES = tuple(PACKAGED_DATA)


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are missing."""


def _dataset_roots(node, where: str) -> Iterator[Tuple[str, str]]:
    if isinstance(node, dict):
        if 'data_root' in node and isinstance(node['data_root'], str):
            yield where, node['data_root']
        for key, value in node.items():
            yield from _dataset_roots(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _dataset_roots(value, f'{where}[{index}]')


def check_data_roots(cfg: Config, splits: Tuple[str, ...]) -> None:
    """Raise :class:`DataNotFoundError` naming every missing ``data_root`` of ``splits``.

    Args:
        cfg: The full config.
        splits: Dataloader keys to check, e.g. ``('train_dataloader', 'val_dataloader')``;
            dotted keys reach into nested configs (``'test_cfg.train_dataloader'``).
    """
    missing: List[str] = []
    for split in splits:
        loader = cfg
        for part in split.split('.'):
            loader = loader.get(part) if hasattr(loader, 'get') else None
        if not loader:
            continue
        for where, root in _dataset_roots(loader.get('dataset', {}), f'{split}.dataset'):
            if root.startswith(PACKAGED_DATA_PREFIXES):
                continue
            if not osp.isdir(root):
                missing.append(f'  {where}: {osp.abspath(root)}')
    if missing:
        hint = cfg.get('data_hint', '')
        raise DataNotFoundError('data not found; these folders do not exist:\n' +
                                '\n'.join(dict.fromkeys(missing)) + ('\n' + hint if hint else ''))
