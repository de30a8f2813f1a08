"""Batches images for the denoisers."""
from typing import Any, Dict

import torch
from mmengine.model import BaseDataPreprocessor

from ebtvision.registry import MODELS


def stack_batch(inputs, layout: str, hint: str) -> torch.Tensor:
    """Stack a list of same-shape tensors (or pass a batch tensor) and check its rank.

    Args:
        inputs: A list/tuple of tensors or an already stacked tensor.
        layout: The expected batch layout, e.g. ``'(B, C, H, W)'``; its rank is checked.
        hint: What to change in the pipeline when the shapes differ.
    """
    if isinstance(inputs, (list, tuple)):
        shapes = {tuple(item.shape) for item in inputs}
        if len(shapes) > 1:
            raise ValueError(f'inputs of one batch must share a shape, got {sorted(shapes)}; '
                             f'{hint}')
        inputs = torch.stack(list(inputs))
    if inputs.dim() != layout.count(',') + 1:
        raise ValueError(f'expected {layout} inputs, got shape {tuple(inputs.shape)}')
    return inputs


@MODELS.register_module()
class ImageDataPreprocessor(BaseDataPreprocessor):
    """Stack a list of (C, H, W) images into one (B, C, H, W) float batch on the device.

    The transforms already scaled pixels to [-1, 1]; this only batches and moves data.
    """

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        data = self.cast_data(data)
        inputs = stack_batch(data['inputs'], '(B, C, H, W)', 'add a crop or resize to the pipeline')
        return dict(inputs=inputs.float(), data_samples=data.get('data_samples'))
