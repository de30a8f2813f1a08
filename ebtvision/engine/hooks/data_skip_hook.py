"""Count the training and validation samples skipped as unusable, and log the counts."""
from typing import Any, List, Optional, Sequence, Set

from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from ebtvision.datasets.skip_report import log_data_warning, skipped_files_of
from ebtvision.registry import HOOKS


def excluded_files_of(dataset: Any) -> List[str]:
    """Files a dataset dropped as unusable when it was built (test-mode checks).

    Looks through MMEngine's dataset wrappers (``ConcatDataset``, ``RepeatDataset``,
    ``ClassBalancedDataset``).

    Args:
        dataset: A dataset, possibly wrapped.

    Returns:
        The paths (``skipped_files`` of image and video datasets, the keys of
        ``skipped_videos`` of the latent cache).
    """
    found: List[str] = []
    for inner in getattr(dataset, 'datasets', None) or []:
        found.extend(excluded_files_of(inner))
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and inner is not dataset:
        found.extend(excluded_files_of(inner))
    found.extend(getattr(dataset, 'skipped_files', None) or [])
    found.extend(getattr(dataset, 'skipped_videos', None) or {})
    return found


def _listing(paths: Sequence[str], limit: int) -> str:
    return str(list(paths[:limit])) + (' ...' if len(paths) > limit else '')


@HOOKS.register_module()
class DataSkipHook(Hook):
    """Log how many samples were skipped because their file was unusable.

    Training datasets draw another sample when a file cannot be used (an unreadable
    image, a corrupt video) and record the skipped files in the sample they return
    (``ebtvision.datasets.skip_report``). That record travels with the batch from the
    dataloader workers, so this hook sees every skip, whatever the number of workers,
    and logs through MMEngine's logger (the work dir's log file):

    * every ``interval`` training iterations in which something was skipped: the
      count for those iterations, the distinct files, and the ones not named before;
    * after each training epoch (for iteration-based training, once at the end): the
      epoch's count;
    * after each validation and test: draws skipped during it, and (once) the files
      the evaluation dataset excluded when it was built.

    Nothing is logged when nothing was skipped. The loaders also warn once per file
    and process when they first meet it.

    Args:
        interval: Iterations between window reports (0 or ``None``: epoch reports
            only).
        max_listed: How many file names a report lists.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, interval: Optional[int] = 50, max_listed: int = 10) -> None:
        if interval is not None and int(interval) < 0:
            raise ValueError(f'interval must be >= 0 or None, got {interval}')
        self.interval = int(interval or 0)
        self.max_listed = int(max_listed)
        self.total = 0
        self._named: Set[str] = set()
        self._window: List[str] = []
        self._window_start = 1
        self._epoch: List[str] = []
        self._eval: List[str] = []
        self._reported_datasets: Set[int] = set()

    def _report(self, where: str, skipped: List[str], training: bool = True) -> None:
        files = sorted(set(skipped))
        new = [f for f in files if f not in self._named]
        self._named.update(new)
        message = (f'{where}: {len(skipped)} sample draw(s) skipped as unusable, '
                   f'{len(files)} file(s)')
        if new:
            message += f', not named before: {_listing(new, self.max_listed)}'
        if training:
            message += f' ({self.total} in training so far)'
        log_data_warning(message)

    # -- training ---------------------------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        self._epoch = []
        self._window = []
        self._window_start = runner.iter + 1

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        skipped = skipped_files_of(data_batch)
        self.total += len(skipped)
        self._window.extend(skipped)
        self._epoch.extend(skipped)
        if self.interval and self.every_n_train_iters(runner, self.interval):
            if self._window:
                self._report(f'Iterations {self._window_start}-{runner.iter + 1}',
                             self._window)
            self._window = []
            self._window_start = runner.iter + 2

    def after_train_epoch(self, runner) -> None:
        if not self._epoch:
            return
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where = f'Epoch {runner.epoch + 1}'
        else:
            where = f'Training (iterations 1-{runner.iter})'
        self._report(where, self._epoch)
        self._epoch = []

    # -- evaluation: validation and test, through MMEngine's mode-dispatching hooks --
    def _before_epoch(self, runner, mode: str = 'train') -> None:
        if mode != 'train':
            self._eval = []

    def _after_iter(self, runner, batch_idx: int, data_batch: Any = None, outputs: Any = None,
                    mode: str = 'train') -> None:
        if mode != 'train':
            self._eval.extend(skipped_files_of(data_batch))

    def _after_epoch(self, runner, mode: str = 'train') -> None:
        if mode == 'train':
            return
        name = 'Validation' if mode == 'val' else 'Test'
        if self._eval:
            self._report(name, self._eval, training=False)
        dataloader = runner.val_dataloader if mode == 'val' else runner.test_dataloader
        dataset = getattr(dataloader, 'dataset', None)
        if dataset is not None and id(dataset) not in self._reported_datasets:
            self._reported_datasets.add(id(dataset))
            excluded = excluded_files_of(dataset)
            if excluded:
                log_data_warning(
                    f'{name} set: {len(excluded)} unusable file(s) were excluded when it was '
                    f'built: {_listing(excluded, self.max_listed)}')
        self._eval = []
