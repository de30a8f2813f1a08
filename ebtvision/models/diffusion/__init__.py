from .ddpm_schedule import DDPMSchedule, discretized_gaussian_log_likelihood, normal_kl

__all__ = ['DDPMSchedule', 'discretized_gaussian_log_likelihood', 'normal_kl']
