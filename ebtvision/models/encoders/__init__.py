"""Frozen frame encoders (pixels <-> latents) for the next-frame models."""
from .base_encoder import BaseFrameEncoder
from .frozen_vae import SD_VAE_ARCH, VAE_ARCHS, FrozenVAEEncoder, load_pretrained_vae
from .pixel_patch import PixelPatchEncoder

__all__ = [
    'BaseFrameEncoder', 'FrozenVAEEncoder', 'PixelPatchEncoder', 'SD_VAE_ARCH', 'VAE_ARCHS',
    'load_pretrained_vae'
]
