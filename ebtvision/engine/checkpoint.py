"""Safe checkpoint I/O for MMEngine runners.

Two things MMEngine 0.10 does not do with torch >= 2.6:

* Loading. ``torch.load`` defaults to ``weights_only=True`` and refuses MMEngine's own
  resume state (``HistoryBuffer``, numpy arrays), so ``--resume`` fails. Turning
  ``weights_only`` off would let a checkpoint run arbitrary code. Instead every local
  checkpoint is loaded weights-only with a short allow-list of the plain-data classes
  MMEngine writes. A checkpoint holding anything else is refused with a clear error.
* Saving. MMEngine writes checkpoints in place, so a crash mid-write leaves a truncated
  file. Local writes go to a temporary file that is renamed over the target once
  complete (``os.replace`` is atomic on POSIX).

Importing this module installs both for the process (``ebtvision.engine`` does).
"""
import os
import os.path as osp
import pickle
import tempfile
from typing import Optional, Union

import numpy as np
import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

# Plain-data types found in MMEngine checkpoints (message hub, meta, RNG states).
_NP_MULTIARRAY = (np._core if hasattr(np, '_core') else np.core).multiarray
SAFE_GLOBALS = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    _NP_MULTIARRAY._reconstruct,
    _NP_MULTIARRAY.scalar,
] + [type(np.dtype(name)) for name in (
    'float64', 'float32', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint64', 'uint32',
    'uint16', 'uint8', 'bool')]


def load_checkpoint_weights_only(filename: Union[str, os.PathLike],
                                 map_location: Optional[Union[str, torch.device]] = None):
    """Load a checkpoint without executing code from it.

    Raises:
        FileNotFoundError: The file does not exist.
        RuntimeError: The file is not a checkpoint, is truncated, or holds objects outside
            the allow-list (which a weights-only load refuses to build).
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise RuntimeError(
            f'checkpoint {filename} holds objects that a weights-only load refuses to '
            f'build, so it was not loaded (ebtvision never unpickles code): {error}') from None
    except Exception as error:  # noqa: BLE001  any other failure: a damaged file
        raise RuntimeError(f'checkpoint {filename} is unreadable (truncated or not a torch '
                           f'checkpoint): {error}') from None
    return plain_to_history_buffers(checkpoint)


_PLAIN_BUFFER_TAG = '__history_buffer__'


def history_buffers_to_plain(checkpoint: dict) -> dict:
    """Replace the message hub's ``HistoryBuffer`` objects by plain arrays, in place.

    A pickled ``HistoryBuffer`` references its statistics functions through ``getattr``,
    which a weights-only load refuses (rightly: ``getattr`` can reach anything).
    """
    scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
    for key, buffer in scalars.items():
        if isinstance(buffer, HistoryBuffer):
            logs, counts = buffer.data
            scalars[key] = {_PLAIN_BUFFER_TAG: True, 'log_history': logs,
                            'count_history': counts, 'max_length': buffer.max_length}
    return checkpoint


def plain_to_history_buffers(checkpoint):
    """Inverse of :func:`history_buffers_to_plain`, in place; other objects pass through."""
    if not isinstance(checkpoint, dict):
        return checkpoint
    scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
    for key, value in scalars.items():
        if isinstance(value, dict) and value.get(_PLAIN_BUFFER_TAG):
            scalars[key] = HistoryBuffer(list(value['log_history']),
                                         list(value['count_history']), value['max_length'])
    return checkpoint


class AtomicLocalBackend(LocalBackend):
    """Local file backend whose writes are all-or-nothing."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), filepath)


def atomic_write(data: bytes, filepath: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``filepath`` through a temporary file and an atomic rename."""
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix='.part')
    try:
        with os.fdopen(handle, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, filepath)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest checkpoint in ``work_dir`` that loads, or None.

    Follows MMEngine's ``last_checkpoint`` pointer first; if the pointer is missing,
    empty or names a file that is gone or unreadable (a crash at the wrong moment), falls
    back to the ``iter_*.pth`` / ``epoch_*.pth`` files, newest first.
    """
    candidates = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            candidates.append(named if osp.isabs(named) else osp.join(work_dir, named))
    if osp.isdir(work_dir):
        numbered = []
        for name in os.listdir(work_dir):
            stem, ext = osp.splitext(name)
            prefix, _, number = stem.partition('_')
            if ext == '.pth' and prefix in ('iter', 'epoch') and number.isdigit():
                numbered.append((int(number), osp.join(work_dir, name)))
        candidates += [path for _, path in sorted(numbered, reverse=True)]
    for path in candidates:
        try:
            checkpoint = load_checkpoint_weights_only(path, map_location='cpu')
        except (FileNotFoundError, RuntimeError):
            continue
        if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
            return path
    return None


def install() -> None:
    """Route MMEngine's local checkpoint loading and file writes through this module."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_weights_only,
                                     force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


install()
