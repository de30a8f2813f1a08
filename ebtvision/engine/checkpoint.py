"""Resuming from the newest checkpoint of a work dir that loads.

:func:`search_resumable_checkpoint` finds it and says why each newer one was skipped;
:func:`set_aside` keeps an unreadable one from being overwritten; :func:`remove_partial_writes`
deletes what writes killed half-way left behind.

The weights-only loading and atomic writing these rely on live in :mod:`ebtvision.fileio`
(and are re-exported here and from ``ebtvision.engine``). Importing this module changes
nothing in MMEngine; see :func:`ebtvision.fileio.install_safe_checkpoint_io`.
"""
import glob
import os
import os.path as osp
import re
import shutil
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from ebtvision.fileio import (PARTIAL_WRITE_PATTERN, AtomicLocalBackend, CheckpointLoadError,
                              atomic_write, history_buffers_to_plain,
                              load_checkpoint_weights_only, plain_to_history_buffers)

__all__ = [
    'AtomicLocalBackend', 'CheckpointLoadError', 'PARTIAL_WRITE_PATTERN', 'ResumeSearch',
    'atomic_write', 'history_buffers_to_plain', 'load_checkpoint_weights_only',
    'numbered_checkpoints', 'plain_to_history_buffers', 'remove_partial_writes',
    'search_resumable_checkpoint', 'set_aside'
]

_NUMBERED = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


@dataclass
class ResumeSearch:
    """What :func:`search_resumable_checkpoint` found in a work dir.

    Attributes:
        checkpoint: The newest checkpoint that loads, or None.
        skipped: ``(path, reason)`` of every newer candidate that does not load.
        present: Every checkpoint file of the work dir (``iter_*.pth``, ``epoch_*.pth``).
    """
    checkpoint: Optional[str] = None
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    present: List[str] = field(default_factory=list)


def numbered_checkpoints(work_dir: str) -> List[str]:
    """``iter_*.pth`` / ``epoch_*.pth`` files of ``work_dir``, newest first."""
    if not osp.isdir(work_dir):
        return []
    numbered = []
    for name in os.listdir(work_dir):
        match = _NUMBERED.match(name)
        if match:
            numbered.append((int(match.group(2)), osp.join(work_dir, name)))
    return [path for _, path in sorted(numbered, reverse=True)]


def search_resumable_checkpoint(work_dir: str) -> ResumeSearch:
    """Find the newest checkpoint in ``work_dir`` that loads, and why others were skipped.

    Follows MMEngine's ``last_checkpoint`` pointer first; if the pointer is missing,
    empty or names a file that is gone or unreadable (a crash at the wrong moment), falls
    back to the ``iter_*.pth`` / ``epoch_*.pth`` files, newest first.
    """
    search = ResumeSearch(present=numbered_checkpoints(work_dir))
    candidates = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            candidates.append(named if osp.isabs(named) else osp.join(work_dir, named))
        else:
            search.skipped.append((pointer, 'empty (a crash while it was written)'))
    seen = set()
    for path in candidates + search.present:
        key = osp.realpath(path)
        if key in seen:
            continue
        seen.add(key)
        try:
            checkpoint = load_checkpoint_weights_only(path, map_location='cpu')
        except FileNotFoundError:
            search.skipped.append((path, 'named by last_checkpoint but missing'))
            continue
        except CheckpointLoadError as error:
            search.skipped.append((path, error.reason))
            continue
        if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
            search.checkpoint = path
            return search
        search.skipped.append((path, 'holds no state_dict (not a training checkpoint)'))
    return search


def set_aside(path: str) -> str:
    """Rename an unreadable checkpoint to ``<path>.unreadable[.N]`` so that nothing
    overwrites or deletes it (a resumed run would write a file of the same name, and
    checkpoint rotation deletes old ones); returns the new name."""
    target, number = f'{path}.unreadable', 0
    while osp.exists(target):
        number += 1
        target = f'{path}.unreadable.{number}'
    os.replace(path, target)
    return target


def remove_partial_writes(directory: str) -> List[str]:
    """Delete the temporary files of writes killed half-way (:func:`atomic_write`)."""
    removed = []
    for path in glob.glob(osp.join(glob.escape(directory), PARTIAL_WRITE_PATTERN)):
        try:
            if osp.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(path)
        except FileNotFoundError:  # another rank got there first
            pass
    return removed
