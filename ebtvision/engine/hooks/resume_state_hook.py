"""Checkpoint contents that make ``--resume`` exact and weights-only loadable."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from ebtvision.registry import HOOKS
from ..checkpoint import history_buffers_to_plain


def capture_rng_state() -> dict:
    """RNG states of torch (CPU and CUDA), numpy and python, as plain data."""
    np_state = np.random.get_state()
    return dict(
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        numpy=dict(name=np_state[0], keys=np_state[1], pos=int(np_state[2]),
                   has_gauss=int(np_state[3]), cached_gaussian=float(np_state[4])),
        python=random.getstate(),
    )


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state['torch'])
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
    numpy_state = state['numpy']
    np.random.set_state((numpy_state['name'], numpy_state['keys'], numpy_state['pos'],
                         numpy_state['has_gauss'], numpy_state['cached_gaussian']))
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))


@HOOKS.register_module()
class ResumeStateHook(Hook):
    """Make every checkpoint resumable exactly and loadable weights-only.

    1. MMEngine's message hub holds ``HistoryBuffer`` objects whose pickles reference
       functions through ``getattr``, which a weights-only load must refuse. They are
       stored as plain arrays instead (the loader in ``ebtvision.engine.checkpoint``
       rebuilds them).
    2. The torch / numpy / python RNG states of the main process are stored too, and
       restored just before the first training iteration after loading (after MMEngine
       has fast-forwarded the dataloader), so the model's noise, the thinking loop's
       random step sizes and DiT's timesteps continue where they stopped. MMEngine
       reseeds dataloader workers and replays them on resume, so with ``num_workers > 0``
       the data continues exactly too (with ``num_workers=0``, random transforms of the
       first batch after resuming may differ).
    3. Validation leaves the training RNG untouched (its state is put back afterwards),
       so validating more or less often does not change what the model trains on.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None
        self._before_val: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        history_buffers_to_plain(checkpoint)
        # MMEngine re-saves the latest checkpoint after validation (to record the best
        # score); training continues from the pre-validation state, so store that one.
        checkpoint['rng_state'] = self._before_val or capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('rng_state')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is not None:
            restore_rng_state(self._pending)
            self._pending = None

    def before_val_epoch(self, runner) -> None:
        self._before_val = capture_rng_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._before_val is not None:
            restore_rng_state(self._before_val)
            self._before_val = None
