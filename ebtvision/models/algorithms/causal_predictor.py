"""What the next-frame and the language models share: causal prediction of the next item.

Both see a sequence (frame latents, tokens) and predict every next item in one causal
pass; at inference both extend a prefix one item at a time, reading each new item
against the keys and values kept from the earlier ones (:class:`KVCache`).
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import torch

from ..layers.kv_cache import KVCache
from .task_model import TaskModel, sample_generator


class Continuation(NamedTuple):
    """What :meth:`CausalPredictor.autoregress` made."""
    items: torch.Tensor  #: (B, n, ...) the new items (frame latents, tokens)
    energies: Optional[torch.Tensor] = None  #: (B, n) final energy of each (EBTs)
    steps_used: Optional[torch.Tensor] = None  #: (B, n) thinking steps of each (adaptive)


class CausalPredictor(TaskModel):
    """Base of the causal task models (:class:`NextFramePredictor`, :class:`LanguageModel`).

    Subclasses set ``eval_seed`` and implement :meth:`predict_next`.
    """

    def eval_generator(self, data_samples: Optional[Sequence], position: int,
                       offset: int = 0) -> torch.Generator:
        """Generator of one sample's evaluation randomness (see ``eval_seed``)."""
        return sample_generator(self.eval_seed, data_samples, position, 10_007, offset)

    def predict_next(self, sequence: torch.Tensor, data_samples: Optional[Sequence],
                     seed_offset: int, cache: Optional[KVCache], **kwargs
                     ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """The item after ``sequence`` (B, T, ...): ``(item (B, 1, ...), energy (B,) or
        None, steps_used (B,) or None)``; with a ``cache`` only the new part of
        ``sequence`` is read."""
        raise NotImplementedError

    @torch.no_grad()
    def autoregress(self, prefix: torch.Tensor, num_new: int, use_cache: bool = True,
                    data_samples: Optional[Sequence] = None, first_seed_offset: int = 0,
                    **kwargs) -> Continuation:
        """Extend ``prefix`` (B, k, ...) by ``num_new`` items, each predicted from every
        item before it and then appended as if real.

        Args:
            prefix: The conditioning items.
            num_new: Items to predict.
            use_cache: Keep the keys and values of the items read (:class:`KVCache`), so
                each new item costs one item's pass instead of re-reading the sequence;
                the result is the same up to float rounding (adaptive stopping then looks
                at the new item's energy alone).
            data_samples: One per row, to seed an EBT's random starts by sample.
            first_seed_offset: Seed offset of the first new item (then +1 per item).
            **kwargs: Thinking options for :meth:`predict_next`.
        """
        cache = KVCache() if use_cache else None
        sequence = prefix
        energies, steps = [], []
        for index in range(num_new):
            item, energy, steps_used = self.predict_next(
                sequence, data_samples, first_seed_offset + index, cache, **kwargs)
            sequence = torch.cat([sequence, item], dim=1)
            if energy is not None:
                energies.append(energy)
            if steps_used is not None:
                steps.append(steps_used)
        return Continuation(sequence[:, prefix.shape[1]:],
                            torch.stack(energies, 1) if energies else None,
                            torch.stack(steps, 1) if steps else None)
