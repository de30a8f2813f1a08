"""Replay buffer of past predictions (System 2 training regulariser).

Keeps ``(sample, final prediction)`` pairs of past batches. Buffered samples join a new
batch and start from their stored prediction instead of a fresh initial candidate, so the
model also learns to refine already good candidates (an effectively longer trajectory).
By default (``mode='append'``, the paper's code) they are added after the whole fresh
batch and only the fresh samples are pushed; ``mode='replace'`` swaps them in for the
last samples of the batch instead (same batch size) and pushes every row.
"""
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from ebtvision.registry import MODELS

Batch = Dict[str, torch.Tensor]


@MODELS.register_module()
class ReplayBuffer(nn.Module):
    """A FIFO of per-sample tensors, mixed into new batches.

    ``mode='append'`` (default; the reference code's semantics): a batch of B fresh
    samples becomes B + k rows, the fresh ones first, then k = int(replay_fraction * B)
    buffered ones (fewer while the buffer holds fewer), which start from their stored
    final predictions; the loss covers all B + k rows, and only the B fresh samples and
    their final predictions are pushed, so a sample enters the buffer once.
    ``mode='replace'``: the last k = round(replay_fraction * B) rows of the batch are
    replaced by buffered samples (the batch keeps B rows) and every row, replayed ones
    included, is pushed again with its new prediction.

    Every tensor of a batch dict has the batch as its first dim; the buffer stores each
    sample's entries plus its final prediction, detached, on the model's device. It has
    no weights, but its contents and its generator are the module's extra state, so they
    are saved in checkpoints and a resumed run replays exactly what an uninterrupted one
    would (with DDP, rank 0's buffer is saved and every rank resumes with it).
    ``save_in_checkpoint=False`` leaves them out (the buffer then refills within
    ``capacity / batch`` iterations): a video buffer of 192 clips of 16 SD latents is
    about 115 MB.

    Args:
        capacity: Samples kept (the paper: 192).
        replay_fraction: Buffered samples per fresh one (0.5; the reference's
            ``mcmc_replay_buffer_sample_bs_percent``), appended to or replacing part of
            each batch (see ``mode``), once the buffer holds enough of them.
        seed: Seed of the buffer's own generator (which buffered samples are drawn), so
            sampling does not consume the global RNG.
        save_in_checkpoint: Whether checkpoints hold the buffer.
        mode: ``'append'`` (default, the reference) or ``'replace'`` (see above). The
            saved state is the same in both modes.
    """

    MODES = ('append', 'replace')

    def __init__(self, capacity: int = 192, replay_fraction: float = 0.5,
                 seed: Optional[int] = None, save_in_checkpoint: bool = True,
                 mode: str = 'append') -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f'mode must be one of {self.MODES}, got {mode!r}')
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        if not 0 <= replay_fraction <= 1:
            raise ValueError(f'replay_fraction must be in [0, 1], got {replay_fraction}')
        self.capacity = capacity
        self.replay_fraction = replay_fraction
        self.mode = mode
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else seed)
        self.storage: Optional[Batch] = None
        self.save_in_checkpoint = save_in_checkpoint

    def __len__(self) -> int:
        return 0 if self.storage is None else len(self.storage['prediction'])

    def push(self, batch: Batch, prediction: torch.Tensor,
             num_fresh: Optional[int] = None) -> None:
        """Append a batch's samples and their final predictions; drop the oldest.

        Args:
            batch: The batch as :meth:`mix` returned it.
            prediction: Final predictions of its rows.
            num_fresh: The batch size before :meth:`mix`. In ``'append'`` mode only these
                first (fresh) rows are pushed; ``'replace'`` mode and ``None`` push all.
        """
        rows = slice(None)
        if self.mode == 'append' and num_fresh is not None:
            rows = slice(0, num_fresh)
        entries = {key: value[rows].detach() for key, value in batch.items()}
        entries['prediction'] = prediction[rows].detach()
        if self.storage is None:
            self.storage = {key: value[-self.capacity:] for key, value in entries.items()}
            return
        if set(entries) != set(self.storage):
            raise KeyError(f'batch keys {sorted(entries)} differ from the buffered '
                           f'{sorted(self.storage)}')
        for key, value in entries.items():
            stored = self.storage[key]
            if value.shape[1:] != stored.shape[1:]:
                # Clip or frame sizes changed mid-run: start afresh rather than mix.
                self.storage = {k: v[-self.capacity:] for k, v in entries.items()}
                return
        self.storage = {
            # The buffer follows the data's device (it may come from a CPU checkpoint).
            key: torch.cat([self.storage[key].to(value.device), value])[-self.capacity:]
            for key, value in entries.items()
        }

    def mix(self, batch: Batch, init: torch.Tensor) -> Tuple[Batch, torch.Tensor, int]:
        """Add buffered samples to ``batch`` (and their predictions to ``init``).

        ``'append'``: after all the fresh rows; ``'replace'``: in place of the last rows.

        Returns:
            ``(batch, init, num_replayed)``; the inputs unchanged when the buffer is
            empty, holds samples of another shape, or ``replay_fraction`` is 0.
        """
        size = init.shape[0]
        wanted = (int(self.replay_fraction * size) if self.mode == 'append'  # reference: int()
                  else int(round(self.replay_fraction * size)))
        count = min(wanted, len(self))
        if count == 0 or any(self.storage[key].shape[1:] != value.shape[1:]
                             for key, value in batch.items()):
            return batch, init, 0
        picks = torch.randperm(len(self), generator=self.generator)[:count]
        picks = picks.to(self.storage['prediction'].device)
        keep = size if self.mode == 'append' else size - count
        mixed = {
            key: torch.cat([value[:keep], self.storage[key][picks].to(value.device)])
            for key, value in batch.items()
        }
        replayed = self.storage['prediction'][picks].to(device=init.device, dtype=init.dtype)
        return mixed, torch.cat([init[:keep], replayed]), count

    def get_extra_state(self) -> Dict[str, Any]:
        """The buffered samples and the generator (plain tensors: loads weights-only)."""
        if not self.save_in_checkpoint:
            return {}
        storage = {key: value.cpu() for key, value in (self.storage or {}).items()}
        return dict(storage=storage, generator=self.generator.get_state())

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        if not state:  # saved without the buffer: keep refilling from empty
            return
        stored = state.get('storage') or {}
        lengths = {len(value) for value in stored.values()}
        if stored and ('prediction' not in stored or len(lengths) != 1):
            raise ValueError('replay buffer state is inconsistent: every entry needs the same '
                             f'number of samples and a prediction, got {sorted(stored)}')
        # Kept where it was saved (CPU) until the next push moves it to the data's device.
        self.storage = ({key: value[-self.capacity:] for key, value in stored.items()}
                        if stored else None)
        self.generator.set_state(state['generator'])

    def extra_repr(self) -> str:
        return (f'capacity={self.capacity}, replay_fraction={self.replay_fraction}, '
                f'mode={self.mode}, size={len(self)}')
