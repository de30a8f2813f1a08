"""Batches token sequences for the language models."""
from typing import Any, Dict

import torch
from mmengine.model import BaseDataPreprocessor

from ebtvision.registry import MODELS
from .image_preprocessor import stack_batch


@MODELS.register_module()
class TextDataPreprocessor(BaseDataPreprocessor):
    """Stack (L + 1,) token id tensors into one (B, L + 1) long batch on the device."""

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        data = self.cast_data(data)
        inputs = stack_batch(data['inputs'], '(B, L)', 'pack every sample to the same seq_len')
        if inputs.dtype != torch.long:
            raise ValueError(f'token inputs must be integer ids, got {inputs.dtype}')
        return dict(inputs=inputs, data_samples=data.get('data_samples'))
