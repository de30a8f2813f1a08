"""Activation checkpointing that works through the thinking loop's second-order graph."""
import torch
from torch.utils.checkpoint import checkpoint


def call_block(block, *args, with_cp: bool = False):
    """``block(*args)``; with ``with_cp`` (and gradients on) as an activation checkpoint:
    the block's activations are recomputed in the backward pass instead of kept.

    Non-reentrant checkpoints, because they support what EBT training does: the energy
    gradient (``create_graph=True``) recomputes the block and keeps that graph, and the
    loss's backward then differentiates through it (gradients are identical, tested).
    """
    if with_cp and torch.is_grad_enabled():
        return checkpoint(block, *args, use_reentrant=False)
    return block(*args)
