from .base_denoiser import BaseDenoiser, noise_level_key
from .dit_denoiser import DiTDenoiser
from .ebt_denoiser import EBTDenoiser

__all__ = ['BaseDenoiser', 'noise_level_key', 'DiTDenoiser', 'EBTDenoiser']
