"""Batches video clips (or cached latents) for next-frame prediction."""
from typing import Any, Dict

import torch
from mmengine.model import BaseDataPreprocessor

from ebtvision.registry import MODELS


@MODELS.register_module()
class VideoDataPreprocessor(BaseDataPreprocessor):
    """Stack clips into one (B, L, ...) batch on the device.

    uint8 frames (L, 3, H, W) are scaled to [-1, 1] floats (what the VAE expects);
    float inputs (cached latents) pass through unchanged.
    """

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            shapes = {tuple(clip.shape) for clip in inputs}
            if len(shapes) > 1:
                raise ValueError(f'clips of one batch must share a shape, got {sorted(shapes)}; '
                                 'use the same clip_len and a crop in every pipeline')
            dtypes = {clip.dtype for clip in inputs}
            if len(dtypes) > 1:
                raise ValueError(f'a batch mixes input dtypes {sorted(map(str, dtypes))}: '
                                 'pixel clips and cached latents cannot share a batch')
            inputs = torch.stack(list(inputs))
        if inputs.dim() != 5:
            raise ValueError(f'expected (B, L, C, H, W) clips, got shape {tuple(inputs.shape)}')
        if inputs.dtype == torch.uint8:
            inputs = inputs.float() / 127.5 - 1.0
        return dict(inputs=inputs.float(), data_samples=data.get('data_samples'))
