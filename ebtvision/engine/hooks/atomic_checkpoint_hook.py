"""MMEngine's CheckpointHook with a crash-safe ``last_checkpoint`` pointer."""
import logging
import os
import os.path as osp
import tempfile

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from ebtvision.engine.checkpoint import remove_partial_writes
from ebtvision.registry import HOOKS


class _WorkDirRedirect:
    """A runner seen through a different ``work_dir``; everything else is the runner's."""

    def __init__(self, runner, work_dir: str) -> None:
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name):
        return getattr(self._runner, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """CheckpointHook whose ``last_checkpoint`` is replaced atomically.

    MMEngine rewrites ``<work_dir>/last_checkpoint`` with a plain ``open('w')``: a kill
    between the truncation and the write leaves it empty. Here the hook writes the
    pointer into a temporary folder of the work dir, which is then renamed over the old
    pointer, so a reader sees the old name or the new one, never nothing. Checkpoint
    files themselves are already written atomically (:class:`AtomicLocalBackend`).

    Before training, temporary files left by writes that were killed half-way
    (``.tmp-*.part``) are deleted from the work dir and the checkpoint folder, with a
    warning naming how many. ``tools/train.py`` uses this hook in place of
    ``CheckpointHook``; it takes the same arguments.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)  # settles out_dir
        if not is_main_process():
            return
        folders = {runner.work_dir}
        if osp.isdir(str(self.out_dir)):
            folders.add(str(self.out_dir))
        removed = [path for folder in sorted(folders) for path in remove_partial_writes(folder)]
        if removed:
            print_log(f'removed {len(removed)} temporary file(s) of checkpoint writes that were '
                      f'interrupted: {", ".join(osp.basename(p) for p in removed)}',
                      logger='current', level=logging.WARNING)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not is_main_process():
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        staging = tempfile.mkdtemp(dir=runner.work_dir, prefix='.tmp-', suffix='.part')
        try:
            super()._save_checkpoint_with_step(_WorkDirRedirect(runner, staging), step, meta)
            pointer = osp.join(staging, 'last_checkpoint')
            if osp.isfile(pointer):
                os.replace(pointer, osp.join(runner.work_dir, 'last_checkpoint'))
        finally:
            if osp.exists(osp.join(staging, 'last_checkpoint')):
                os.remove(osp.join(staging, 'last_checkpoint'))
            os.rmdir(staging)
