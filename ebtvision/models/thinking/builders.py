"""Building the thinking parts of an EBT from config, with a clear error for a wrong type."""
from typing import Optional

from ebtvision.registry import MODELS
from .energy_minimizer import EnergyMinimizer
from .replay_buffer import ReplayBuffer


def build_thinker(cfg: dict) -> EnergyMinimizer:
    thinker = MODELS.build(cfg)
    if not isinstance(thinker, EnergyMinimizer):
        raise TypeError(f'thinker must build an EnergyMinimizer, got {type(thinker)}')
    return thinker


def build_replay_buffer(cfg: Optional[dict]) -> Optional[ReplayBuffer]:
    """``None`` for no buffer (the S1 default)."""
    if not cfg:
        return None
    buffer = MODELS.build(cfg)
    if not isinstance(buffer, ReplayBuffer):
        raise TypeError(f'replay_buffer must build a ReplayBuffer, got {type(buffer)}')
    return buffer
