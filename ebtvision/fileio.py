"""Safe checkpoint and file I/O: the ground floor every other package may import.

Two things MMEngine 0.10 does not do with torch >= 2.6:

* Loading. ``torch.load`` defaults to ``weights_only=True`` and refuses MMEngine's own
  resume state (``HistoryBuffer``, numpy arrays), so ``--resume`` fails; MMEngine's
  remote loaders (http(s), ``torchvision://``, ``open-mmlab://``...) unpickle without the
  weights-only guard, so a checkpoint from a URL can run code. The loaders here fetch
  the bytes (downloads are cached under ``torch.hub.get_dir()``), then load them
  weights-only with a short allow-list of the plain-data classes MMEngine writes. A
  checkpoint holding anything else is refused with a clear error; a scheme that cannot
  be fetched safely (``pavi://``) is refused by name.
* Saving. MMEngine writes checkpoints in place, so a crash mid-write leaves a truncated
  file. :func:`atomic_write` writes a temporary file and renames it over the target once
  complete (``os.replace`` is atomic on POSIX); :class:`AtomicLocalBackend` is MMEngine's
  local file backend doing so.

Importing this module changes nothing in MMEngine. :func:`install_safe_checkpoint_io`
routes every MMEngine checkpoint scheme and local file writes through it, for the whole
process; the tools and :func:`ebtvision.apis.init_model` call it before they build
anything.

This module imports nothing from ebtvision, so models, datasets, evaluation and
visualization can use it without pulling in the engine.
"""
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import tempfile
import zipfile
from typing import BinaryIO, Optional, Union

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mmengine_checkpoint
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


class CheckpointLoadError(RuntimeError):
    """A checkpoint that cannot or must not be loaded; the message names it and says why.

    Attributes:
        reason: The message without the checkpoint's name (for lists of several files).
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f'checkpoint {name} {reason}')
        self.reason = reason


def _first_sentence(error: Exception) -> str:
    """torch's messages can run to a paragraph; the first sentence says what is wrong."""
    text = str(error).strip().split('. ')[0].strip()
    return text or type(error).__name__


_SCHEME = re.compile(r'^([A-Za-z][A-Za-z0-9+.-]*):(//)?')


def _weights_only_load(source: Union[str, BinaryIO], name: str,
                       map_location: Optional[Union[str, torch.device]]):
    """``torch.load`` with ``weights_only=True`` and the allow-list; clear errors."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointLoadError(
            name, 'holds objects that a weights-only load refuses to build, so it was not '
            f'loaded (ebtvision never unpickles code): {_first_sentence(error)}') from None
    except Exception as error:  # noqa: BLE001  any other failure: a damaged file
        if isinstance(source, str) and osp.getsize(source) == 0:
            raise CheckpointLoadError(name, 'is empty (0 bytes)') from None
        raise CheckpointLoadError(name, 'is unreadable (truncated or not a torch checkpoint): '
                                  f'{_first_sentence(error)}') from None
    return plain_to_history_buffers(checkpoint)


def load_checkpoint_weights_only(filename: Union[str, os.PathLike],
                                 map_location: Optional[Union[str, torch.device]] = None):
    """Load a local checkpoint file without executing code from it.

    Raises:
        FileNotFoundError: The file does not exist.
        CheckpointLoadError: The file is not a checkpoint, is truncated, or holds objects
            outside the allow-list (which a weights-only load refuses to build); or the
            name has a URL scheme that no loader handles.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        scheme = _SCHEME.match(filename)
        if scheme and scheme.group(2) and len(scheme.group(1)) > 1:  # not a Windows drive
            raise CheckpointLoadError(
                filename, f'uses the scheme {scheme.group(0)!r}, which is not supported; use a '
                'local file, http(s)://, s3://, petrel://, torchvision:// or '
                'open-mmlab://')
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    return _weights_only_load(filename, filename, map_location)


class ForeignObject(dict):
    """What a class outside the allow-list becomes in :func:`load_foreign_checkpoint`.

    An inert record: the arguments it was called with and the state pickle gave it
    (``args``, ``state``; items set on it are kept as a dict). Nothing of the original
    class runs.
    """
    origin = 'unknown'

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.args, self.state = args, kwargs or None

    def __setstate__(self, state):
        self.state = state
        if isinstance(state, dict):
            self.update(state)

    def __call__(self, *args, **kwargs):  # a stand-in for a function returns a record
        return self.__class__(*args, **kwargs)

    def __repr__(self):
        return f'<{self.origin} (not loaded)>'


def _foreign_pickle_module():
    """A pickle module whose Unpickler builds torch's tensor types and plain data, and
    replaces every other global by an inert :class:`ForeignObject` subclass."""
    from torch import _weights_only_unpickler
    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    allowed.update({f'{obj.__module__}.{obj.__qualname__}': obj for obj in SAFE_GLOBALS})

    class Unpickler(pickle.Unpickler):

        def find_class(self, module, name):
            found = allowed.get(f'{module}.{name}')
            if found is not None:
                return found
            if module in ('builtins', 'collections') and name in ('dict', 'list', 'tuple',
                                                                  'set', 'OrderedDict'):
                return super().find_class(module, name)
            return type(name, (ForeignObject, ), dict(origin=f'{module}.{name}'))

    def load(file, **kwargs):  # torch also calls pickle_module.load directly
        return Unpickler(file, **kwargs).load()

    return type('foreign_pickle', (), dict(Unpickler=Unpickler, load=staticmethod(load),
                                           __name__='foreign_pickle'))


def load_foreign_checkpoint(filename: Union[str, os.PathLike],
                            map_location: Optional[Union[str, torch.device]] = 'cpu'):
    """Load a checkpoint written by another framework (e.g. a Lightning checkpoint of
    the reference implementation) without executing code from it.

    Such files pickle their trainer's objects (hyper-parameter namespaces, callbacks),
    which a weights-only load refuses outright. Here tensors and plain containers load
    as usual and every other object becomes an inert :class:`ForeignObject`: no class or
    function named in the file is imported or called.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    if osp.getsize(filename) == 0:
        raise CheckpointLoadError(filename, 'is empty (0 bytes)')
    if not zipfile.is_zipfile(filename):  # torch's legacy format: not read at all
        raise CheckpointLoadError(filename, 'is unreadable (not a zip-format torch checkpoint; '
                                  'the legacy format is not read)')
    try:
        # weights_only=False with a restricted pickle module: every global it meets is
        # torch's tensor machinery or an inert ForeignObject, never the file's own class.
        return torch.load(filename, map_location=map_location, weights_only=False,
                          pickle_module=_foreign_pickle_module())
    except Exception as error:  # noqa: BLE001  a damaged or non-torch file
        raise CheckpointLoadError(filename, 'is unreadable (truncated or not a torch '
                                  f'checkpoint): {_first_sentence(error)}') from None


def load_from_local_file(filename: str, map_location=None):
    """MMEngine's local scheme (its log line names the loader after ``load_from_``)."""
    return load_checkpoint_weights_only(filename, map_location)


def _cached_download(url: str) -> str:
    """Download ``url`` once into the torch hub cache; return the local file.

    The cache name includes a hash of the whole URL, so two URLs ending in the same
    file name never share a cache entry. ``download_url_to_file`` writes a temporary
    file and moves it into place, so an interrupted download is never used. In a
    distributed job rank 0 downloads while the others wait.
    """
    cache_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    base = osp.basename(url.split('?', 1)[0]) or 'checkpoint.pth'
    path = osp.join(cache_dir, f'{hashlib.sha256(url.encode()).hexdigest()[:12]}-{base}')
    rank, world_size = get_dist_info()

    def download() -> None:
        if not osp.isfile(path):
            os.makedirs(cache_dir, exist_ok=True)
            try:
                torch.hub.download_url_to_file(url, path, progress=False)
            except Exception as error:  # noqa: BLE001  URLError, HTTPError, timeouts...
                raise CheckpointLoadError(url, f'cannot be downloaded: {error}') from None

    if rank == 0:
        download()
    if world_size > 1:
        barrier()
        if rank > 0:
            download()
    return path


def load_from_url(url: str, map_location=None):
    """Download (or reuse the cached copy of) ``url`` and load it weights-only."""
    return _weights_only_load(_cached_download(url), url, map_location)


def load_from_object_store(filename: str, map_location=None, backend: str = 'petrel'):
    """Object-store checkpoints (``s3://``, ``petrel://``): fetch the bytes, load weights-only."""
    from mmengine.fileio import get_file_backend
    try:
        data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    except Exception as error:  # noqa: BLE001  missing client library, access denied...
        raise CheckpointLoadError(filename, f'cannot be fetched: {error}') from None
    with io.BytesIO(data) as buffer:
        return _weights_only_load(buffer, filename, map_location)


def _model_zoo_url(filename: str) -> str:
    """Resolve ``torchvision://``, ``modelzoo://``, ``open-mmlab://`` and ``mmcls://`` names."""
    scheme, name = filename.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        table = mmengine_checkpoint.get_torchvision_models()
    elif scheme == 'mmcls':
        table = mmengine_checkpoint.get_mmcls_models()
    else:
        table = mmengine_checkpoint.get_external_models()
        name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
    if name not in table:
        raise CheckpointLoadError(filename, f'names no model that {scheme}:// knows')
    return table[name]


def load_from_model_zoo(filename: str, map_location=None):
    """A model-zoo name: resolved to its URL (or file), then loaded weights-only."""
    target = _model_zoo_url(filename)
    if target.startswith(('http://', 'https://')):
        checkpoint = load_from_url(target, map_location)
    else:  # open-mmlab entries may name a file under MMEngine's home
        local = osp.join(mmengine_checkpoint._get_mmengine_home(), target)
        checkpoint = load_checkpoint_weights_only(local, map_location)
    if filename.startswith('mmcls://'):
        checkpoint = mmengine_checkpoint._process_mmcls_checkpoint(checkpoint)
    return checkpoint


def load_from_refused_scheme(filename: str, map_location=None):
    """Schemes whose client downloads and unpickles by itself: refused by name."""
    scheme = _SCHEME.match(filename).group(0)
    raise CheckpointLoadError(
        filename, f'uses the scheme {scheme!r}, which is not supported by ebtvision (its '
        'client unpickles the file itself); download the file and pass its local path')


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


#: What :func:`atomic_write` leaves behind when the process is killed mid-write.
PARTIAL_WRITE_PATTERN = '.tmp-*.part'

#: MMEngine checkpoint schemes (``CheckpointLoader`` prefixes) and the loader of each.
SCHEME_LOADERS = {
    '': load_from_local_file,
    ('http://', 'https://'): load_from_url,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_object_store,
    ('modelzoo://', 'torchvision://', 'open-mmlab://', 'openmmlab://', 'mmcls://'):
    load_from_model_zoo,
    'pavi://': load_from_refused_scheme,
}


def install_safe_checkpoint_io() -> None:
    """Route every MMEngine checkpoint scheme and local file writes through this module.

    Replaces, for the whole process, the loader of each ``CheckpointLoader`` scheme by a
    weights-only one (:data:`SCHEME_LOADERS`) and MMEngine's ``local`` file backend by
    :class:`AtomicLocalBackend`. Idempotent: calling it again registers the same loaders.
    """
    for prefixes, loader in SCHEME_LOADERS.items():
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
