"""MMEngine's ``FlexibleRunner`` (``runner_type='FlexibleRunner'``), with exact resumes."""
from typing import Optional

from mmengine.runner import FlexibleRunner as MMEngineFlexibleRunner

from ebtvision.registry import RUNNERS


@RUNNERS.register_module()
class FlexibleRunner(MMEngineFlexibleRunner):
    """MMEngine's ``FlexibleRunner`` whose checkpoints record the iteration they were
    taken at. Registered under the same name in ebtvision's scope; same arguments.

    MMEngine's ``FlexibleRunner.save_checkpoint`` overwrites the ``epoch`` / ``iter`` that
    the caller puts in ``meta`` by the current ones (+1), and changes the caller's dict,
    where ``Runner`` keeps what it is given. The ``CheckpointHook`` re-saves the latest
    checkpoint after each validation (to record the best score) with the iteration it
    was taken at: MMEngine's FlexibleRunner wrote one more there, so a run resumed from
    it skipped an iteration. Here the caller's values are kept, as ``Runner`` does.
    """

    _given_meta: Optional[dict] = None

    def save_checkpoint(self, out_dir: str, filename: str, file_client_args=None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True,
                        meta: Optional[dict] = None, by_epoch: bool = True,
                        backend_args=None) -> None:
        self._given_meta = {key: meta[key] for key in ('epoch', 'iter')
                            if isinstance(meta, dict) and key in meta}
        try:
            super().save_checkpoint(
                out_dir, filename, file_client_args, save_optimizer=save_optimizer,
                save_param_scheduler=save_param_scheduler,
                meta=dict(meta) if meta is not None else None,  # the caller's stays intact
                by_epoch=by_epoch, backend_args=backend_args)
        finally:
            self._given_meta = None

    def call_hook(self, fn_name: str, **kwargs) -> None:
        if fn_name == 'before_save_checkpoint' and self._given_meta:
            # The checkpoint is complete here, before any hook sees it or it is written.
            kwargs['checkpoint']['meta'].update(self._given_meta)
        super().call_hook(fn_name, **kwargs)
