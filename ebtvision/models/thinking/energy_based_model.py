"""What every Energy-Based Transformer model shares, whatever its task.

:class:`EnergyBasedModel` is the one place that builds the thinker and the replay buffer,
runs the training step through thinking (replay mix -> thinking loop -> trajectory loss
-> replay push -> the standard logs), checks and resolves the inference options, and runs
self-verification. The task models (:class:`EBTDenoiser`, :class:`EBTNextFrame`,
:class:`EBTLanguageModel`) say only what is theirs: what a candidate is, how it starts,
which energy function scores it and which loss it gets. Tools, hooks, demos and the API
tell an EBT from a baseline with ``isinstance(model, EnergyBasedModel)``.
"""
from typing import Callable, Dict, Optional, Tuple

import torch

from .builders import build_replay_buffer, build_thinker
from .energy_minimizer import ThinkingTrajectory, trajectory_loss
from .options import THINKING_KEYS, resolve_option, resolve_thinking
from .self_verification import VerifiedThinking, think_with_candidates

Batch = Dict[str, torch.Tensor]


class EnergyBasedModel:
    """Mixin of every EBT model (listed first among the bases, before ``BaseModel``).

    Subclasses add :data:`THINKING_KEYS` (plus their own) to ``TEST_CFG_KEYS``.

    Args:
        thinker: Config of the :class:`EnergyMinimizer`, built after the task model's own
            parts. ``None`` leaves it to the subclass, which then calls
            :meth:`init_thinking` itself (the denoiser builds its backbone first).
        replay_buffer: Config of the :class:`ReplayBuffer` (S2), or None.
        **kwargs: The task model's arguments.
    """

    def __init__(self, *args, thinker: Optional[dict] = None,
                 replay_buffer: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if thinker is not None:
            self.init_thinking(thinker, replay_buffer)

    def init_thinking(self, thinker: dict, replay_buffer: Optional[dict] = None) -> None:
        """Build the :class:`EnergyMinimizer` and the optional :class:`ReplayBuffer` (S2)."""
        self.thinker = build_thinker(thinker)
        self.replay_buffer = build_replay_buffer(replay_buffer)

    # ------------------------------------------------------------------ training
    def loss_through_thinking(self,
                              batch: Batch,
                              init: torch.Tensor,
                              energy_fn: Callable[[Batch], Callable],
                              loss_fn: Callable[[Batch], Callable],
                              target_key: str = 'target',
                              transform: Optional[Callable] = None
                              ) -> Tuple[ThinkingTrajectory, Batch, Dict[str, torch.Tensor]]:
        """One training step of an EBT, up to the loss.

        With a replay buffer, buffered samples that restart from the model's own earlier
        predictions first join ``batch`` (and ``init``): appended after the fresh rows
        (default) or replacing the last ones (see :class:`ReplayBuffer`); the loss covers
        every row, and after thinking the fresh rows (``'replace'``: all rows) and their
        final predictions are pushed.

        Args:
            batch: The tensors that travel with each sample through the replay buffer,
                ``batch[target_key]`` among them.
            init: Initial candidates, (B, ...).
            energy_fn: ``energy_fn(batch)`` -> the energy function the thinker descends.
            loss_fn: ``loss_fn(batch)`` -> ``loss(prediction, target)``.
            target_key: Which entry of ``batch`` the candidates are compared with.
            transform: Candidate transform of the thinker (e.g. logits normalisation).

        Returns:
            ``(trajectory, batch, logs)``: ``batch`` after the replay mix; ``logs`` holds
            ``loss`` (the only optimised entry) and the logged-only ``energy_first_step``,
            ``alpha``, ``energy_drop`` (several steps) and ``replayed`` (with a buffer).
        """
        replayed, num_fresh = 0, init.shape[0]
        if self.replay_buffer is not None:
            batch, init, replayed = self.replay_buffer.mix(batch, init)
        trajectory = self.thinker(energy_fn(batch), init, create_graph=True, transform=transform)
        loss = trajectory_loss(trajectory, batch[target_key], loss_fn(batch),
                               self.thinker.truncate)
        if self.replay_buffer is not None:
            self.replay_buffer.push(batch, trajectory.final, num_fresh=num_fresh)
        with torch.no_grad():
            # Names without 'loss' are logged, not optimised (MMEngine's parse_losses).
            logs = dict(loss=loss, energy_first_step=trajectory.energies[0].mean(),
                        alpha=self.thinker.alpha.detach().clone())
            if len(trajectory.energies) > 1:
                logs['energy_drop'] = logs['energy_first_step'] - trajectory.energies[-1].mean()
            if self.replay_buffer is not None:
                logs['replayed'] = torch.tensor(float(replayed))
        return trajectory, batch, logs

    # ------------------------------------------------------------------ inference
    def thinking_options(self, num_steps=None, alpha=None, num_candidates=None,
                         tolerance=None) -> Tuple:
        """``(num_steps, alpha, num_candidates, tolerance)`` of one inference call: each
        argument given, else ``test_cfg``'s (checked; see :func:`resolve_thinking`)."""
        return resolve_thinking(self.test_cfg, num_steps, alpha, num_candidates, tolerance)

    def think_and_select(self,
                         energy_fn_for: Callable,
                         starts: torch.Tensor,
                         num_steps: Optional[int] = None,
                         alpha=None,
                         tolerance: Optional[float] = None,
                         transform: Optional[Callable] = None,
                         start_noise: float = 0.0,
                         generator: Optional[torch.Generator] = None,
                         keep_candidates: bool = False) -> VerifiedThinking:
        """Self-verification: think from the M starts ``(M, B, ...)`` as one batch and keep
        per sample (or per frame / token) the candidate of lowest final energy.

        In models that read ``test_cfg.candidate_step_scale`` (default 2) candidates
        other than the first take their own step size, drawn log-uniformly within that
        factor of alpha; ``start_noise`` perturbs their starts. Both are drawn from
        ``generator`` (see :func:`think_with_candidates`).
        """
        step_scale = (resolve_option('candidate_step_scale', None, self.test_cfg, 2.0)
                      if 'candidate_step_scale' in self.TEST_CFG_KEYS else None)
        return think_with_candidates(self.thinker, energy_fn_for, starts, num_steps, alpha,
                                     tolerance, transform=transform, step_scale=step_scale,
                                     start_noise=start_noise, generator=generator,
                                     keep_candidates=keep_candidates)


__all__ = ['EnergyBasedModel', 'THINKING_KEYS']
