from .energy_minimizer import EnergyMinimizer, ThinkingTrajectory, trajectory_loss

__all__ = ['EnergyMinimizer', 'ThinkingTrajectory', 'trajectory_loss']
