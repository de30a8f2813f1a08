"""Batches images for the denoisers."""
from typing import Any, Dict

import torch
from mmengine.model import BaseDataPreprocessor

from ebtvision.registry import MODELS


@MODELS.register_module()
class ImageDataPreprocessor(BaseDataPreprocessor):
    """Stack a list of (C, H, W) images into one (B, C, H, W) float batch on the device.

    The transforms already scaled pixels to [-1, 1]; this only batches and moves data.
    """

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            shapes = {tuple(img.shape) for img in inputs}
            if len(shapes) > 1:
                raise ValueError(f'images of one batch must share a shape, got {sorted(shapes)}; '
                                 'add a crop or resize to the pipeline')
            inputs = torch.stack(list(inputs))
        if inputs.dim() != 4:
            raise ValueError(f'expected (B, C, H, W) images, got shape {tuple(inputs.shape)}')
        return dict(inputs=inputs.float(), data_samples=data.get('data_samples'))
