"""Warnings about unusable data files, and how skipped samples reach the main process.

Every data warning (unreadable image, unusable or truncated video, huge image) goes
through :func:`log_data_warning`: MMEngine's current logger at WARNING level, so it
lands in the work dir's log file as well as on the console. Per-file warnings use
:func:`warn_once`, so a bad file drawn 200 times is named once per process (each
dataloader worker is a process of its own) instead of 200 times.

Training datasets draw another random sample when the pipeline returns ``None``
(MMEngine's refetch). :class:`SkipTrackingMixin` remembers which files were skipped
before a usable sample was found and stores their paths in that sample's metainfo
(:data:`SKIPPED_KEY`). That travels with the batch from the dataloader workers to
the main process, where ``DataSkipHook`` counts and reports it per logging window,
epoch and validation; no shared memory between processes is needed.
"""
import logging
from typing import Any, Hashable, List, Optional, Set

from mmengine.logging import print_log

#: Metainfo key of a data sample listing the files skipped before it was drawn.
SKIPPED_KEY = 'skipped_files'

_warned: Set[Hashable] = set()


def log_data_warning(message: str) -> None:
    """Log ``message`` at WARNING level through MMEngine's current logger.

    Args:
        message: One line naming the file and the problem.
    """
    print_log(message, logger='current', level=logging.WARNING)


def warn_once(key: Hashable, message: str) -> bool:
    """Log ``message`` the first time ``key`` is seen in this process.

    Args:
        key: Identifies the warning, e.g. ``('unreadable image', path)``.
        message: The warning.

    Returns:
        Whether the message was logged.
    """
    if key in _warned:
        return False
    _warned.add(key)
    log_data_warning(message)
    return True


def forget_warnings(kind: Optional[str] = None) -> None:
    """Warn again about files already warned about.

    Args:
        kind: Only forget keys ``(kind, ...)``; ``None`` forgets all.
    """
    if kind is None:
        _warned.clear()
    else:
        for key in [k for k in _warned if isinstance(k, tuple) and k and k[0] == kind]:
            _warned.discard(key)


def skipped_files_of(data: Any) -> List[str]:
    """The skipped file paths recorded in one sample or in a collated batch.

    Args:
        data: A sample ``{'inputs', 'data_samples': DataSample}`` or a batch whose
            ``data_samples`` is a list of them; anything else gives ``[]``.

    Returns:
        The paths, one per skipped draw (a file drawn twice appears twice).
    """
    if not isinstance(data, dict):
        return []
    samples = data.get('data_samples')
    if samples is None:
        return []
    if not isinstance(samples, (list, tuple)):
        samples = [samples]
    found: List[str] = []
    for sample in samples:
        metainfo = getattr(sample, 'metainfo', None)
        if isinstance(metainfo, dict):
            found.extend(metainfo.get(SKIPPED_KEY) or [])
    return found


class SkipTrackingMixin:
    """``__getitem__`` of a ``BaseDataset`` that records the samples it skips.

    MMEngine's ``BaseDataset.__getitem__`` silently draws another index when the
    pipeline returns ``None`` (an unreadable image, an unusable video). This does
    the same (same ``max_refetch``, same ``_rand_another``) but attaches the paths
    of the skipped files to the metainfo of the sample finally returned, under
    :data:`SKIPPED_KEY`, and names them when it gives up. Put it before
    ``BaseDataset`` in the bases.

    Attributes:
        skip_path_key: Data-info key naming the file of a sample.
    """

    skip_path_key: str = 'img_path'

    def _skip_name(self, idx: int) -> str:
        info = self.get_data_info(idx)  # type: ignore[attr-defined]
        return str(info.get(self.skip_path_key, f'sample {idx}'))

    def __getitem__(self, idx: int) -> Any:
        if not self._fully_initialized:  # type: ignore[attr-defined]
            print_log('Please call `full_init()` method manually to accelerate the speed.',
                      logger='current', level=logging.WARNING)
            self.full_init()  # type: ignore[attr-defined]
        if self.test_mode:  # type: ignore[attr-defined]
            # No refetch in test mode: BaseDataset raises on None, keep its behaviour.
            return super().__getitem__(idx)  # type: ignore[misc]
        skipped: List[str] = []
        for _ in range(self.max_refetch + 1):  # type: ignore[attr-defined]
            data = self.prepare_data(idx)  # type: ignore[attr-defined]
            if data is None:
                skipped.append(self._skip_name(idx))
                idx = self._rand_another()  # type: ignore[attr-defined]
                continue
            if skipped:
                samples = data.get('data_samples') if isinstance(data, dict) else None
                if samples is not None and hasattr(samples, 'set_metainfo'):
                    samples.set_metainfo({SKIPPED_KEY: skipped})
            return data
        distinct = sorted(set(skipped))
        draws = len(skipped)
        raise RuntimeError(
            f'No usable sample after {draws} draws: the pipeline returned None for '
            f'{len(distinct)} file(s), e.g. {distinct[:5]}. Too many unreadable files, or '
            'raise max_refetch.')
