from .ddpm_schedule import DDPMSchedule

__all__ = ['DDPMSchedule']
