from .energy_minimizer import EnergyMinimizer, ThinkingTrajectory, trajectory_loss
from .replay_buffer import ReplayBuffer
from .self_verification import select_lowest_energy

__all__ = [
    'EnergyMinimizer', 'ThinkingTrajectory', 'trajectory_loss', 'ReplayBuffer',
    'select_lowest_energy'
]
