from .builders import build_replay_buffer, build_thinker
from .energy_based_model import EnergyBasedModel
from .energy_minimizer import EnergyMinimizer, ThinkingTrajectory, trajectory_loss
from .options import (THINKING_KEYS, ThinkingOptionError, check_test_cfg, resolve_option,
                      resolve_thinking)
from .replay_buffer import ReplayBuffer
from .self_verification import VerifiedThinking, select_lowest_energy, think_with_candidates

__all__ = [
    'EnergyBasedModel',
    'EnergyMinimizer', 'ThinkingTrajectory', 'trajectory_loss', 'ReplayBuffer',
    'select_lowest_energy', 'think_with_candidates', 'VerifiedThinking', 'build_thinker',
    'build_replay_buffer', 'THINKING_KEYS', 'ThinkingOptionError', 'check_test_cfg',
    'resolve_option', 'resolve_thinking'
]
