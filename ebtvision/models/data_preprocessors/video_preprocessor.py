"""Batches video clips (or cached latents) for next-frame prediction."""
from typing import Any, Dict

import torch
from mmengine.model import BaseDataPreprocessor

from ebtvision.registry import MODELS
from .image_preprocessor import stack_batch


@MODELS.register_module()
class VideoDataPreprocessor(BaseDataPreprocessor):
    """Stack clips into one (B, L, ...) batch on the device.

    uint8 frames (L, 3, H, W) are scaled to [-1, 1] floats (what the VAE expects);
    float inputs (cached latents) pass through unchanged.
    """

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)) and len({clip.dtype for clip in inputs}) > 1:
            raise ValueError('a batch mixes pixel clips (uint8) and cached latents (float); '
                             'they cannot share a batch')
        inputs = stack_batch(inputs, '(B, L, C, H, W)',
                             'use the same clip_len and a crop in every pipeline')
        if inputs.dtype == torch.uint8:
            inputs = inputs.float() / 127.5 - 1.0
        return dict(inputs=inputs.float(), data_samples=data.get('data_samples'))
