"""Checkpoint contents that make ``--resume`` exact and weights-only loadable."""
import logging
import random
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

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
    4. Distributed training: every rank has its own RNG stream, so the ranks draw
       different training noise (and DiT timesteps): with ``diff_rank_seed=True`` (the
       default) rank ``r > 0`` is reseeded with ``seed + r`` in ``before_run``; rank 0
       and single-process runs are unchanged. (MMEngine's own
       ``randomness=dict(diff_rank_seed=True)`` seeds ranks the same way but also
       leaves the samplers' seed unset, so they draw one from NumPy's RNG and the data
       order of a single-process run changes; the hook then does nothing more.)
       Only rank 0 writes checkpoints, so the states of all ranks are gathered (when a checkpoint is due, and before each
       validation) and stored as ``rng_states`` (one entry per rank; ``rng_state`` stays
       rank 0's, as in older checkpoints). On resume each rank restores its own entry. If
       the world size changed, ranks without an entry keep their freshly seeded stream
       (a warning says the resume is not exact); without ``diff_rank_seed`` every rank
       restores rank 0's state, as all ranks shared it.

    Args:
        diff_rank_seed: Give every rank its own RNG stream (see 4).
    """

    # After the LOW hooks (visualisation), before CheckpointHook (VERY_LOW = 90), so the
    # ranks' states are gathered just before the checkpoint is written.
    priority = 89

    def __init__(self, diff_rank_seed: bool = True) -> None:
        self.diff_rank_seed = diff_rank_seed
        self._pending: Optional[dict] = None
        self._before_val: Optional[dict] = None
        # (tag, runner.iter) and every rank's state at that point
        self._gathered: Optional[Tuple[Tuple[str, int], List[dict]]] = None

    def _per_rank_streams(self, runner) -> bool:
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        return self.diff_rank_seed or bool(randomness.get('diff_rank_seed', False))

    def before_run(self, runner) -> None:
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        rank = get_rank()
        if (not self.diff_rank_seed or randomness.get('diff_rank_seed', False)
                or runner.seed is None or rank == 0):
            return
        # Rank r: seed + r, as MMEngine's ``diff_rank_seed`` would, but only now, after
        # the model, the dataloaders and their samplers are built (the samplers keep the
        # shared seed, so the shards stay disjoint; MMEngine broadcasts rank 0's weights
        # after ``init_weights``) and never on rank 0, whose run stays as it was.
        seed = runner.seed + rank
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)

    def _gather(self, runner, tag: str, state: Optional[dict] = None) -> None:
        states = all_gather_object(state if state is not None else capture_rng_state())
        self._gathered = ((tag, runner.iter), list(states))

    @staticmethod
    def _checkpoint_due(runner) -> bool:
        """Whether a CheckpointHook saves in this ``after_train_iter`` (same on all ranks)."""
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch and (
                    hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
                    or (hook.save_last and hook.is_last_train_iter(runner))):
                return True
        return False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._checkpoint_due(runner):
            self._gather(runner, 'train')

    def after_train_epoch(self, runner) -> None:
        if any(isinstance(hook, CheckpointHook) and hook.by_epoch for hook in runner.hooks):
            self._gather(runner, 'train')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        history_buffers_to_plain(checkpoint)
        # MMEngine re-saves the latest checkpoint after validation (to record the best
        # score); training continues from the pre-validation state, so store that one.
        own = self._before_val or capture_rng_state()
        checkpoint['rng_state'] = own
        if self._gathered is not None and self._gathered[0][1] == runner.iter:
            states = list(self._gathered[1])
            states[0] = own  # rank 0's exact state now (this runs on rank 0 only)
            checkpoint['rng_states'] = states
        elif get_world_size() == 1:
            checkpoint['rng_states'] = [own]
        else:
            print_log('ResumeStateHook: this checkpoint holds only rank 0\'s RNG state '
                      '(saved outside the CheckpointHook schedule); resuming it restores '
                      'the other ranks\' streams inexactly.', logger='current',
                      level=logging.WARNING)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = self._own_state(runner, checkpoint)

    def _own_state(self, runner, checkpoint: dict) -> Optional[dict]:
        states = checkpoint.get('rng_states')
        rank, world_size = get_rank(), get_world_size()
        if states is None:
            states = [checkpoint['rng_state']] if 'rng_state' in checkpoint else []
            if not states:
                return None
        if len(states) != world_size:
            print_log(f'ResumeStateHook: the checkpoint holds the RNG states of '
                      f'{len(states)} rank(s), this run has {world_size}; ranks without '
                      f'a state of their own '
                      + ('keep their freshly seeded streams' if self._per_rank_streams(runner)
                         else "restore rank 0's") + ', so the resume is not exact.',
                      logger='current', level=logging.WARNING)
        if rank < len(states):
            return states[rank]
        return None if self._per_rank_streams(runner) else states[0]

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._gathered = None  # stale once the next iteration starts
        if self._pending is not None:
            restore_rng_state(self._pending)
            self._pending = None

    def before_val_epoch(self, runner) -> None:
        self._before_val = capture_rng_state()
        if get_world_size() > 1:
            self._gather(runner, 'val', self._before_val)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._before_val is not None:
            restore_rng_state(self._before_val)
            self._before_val = None
