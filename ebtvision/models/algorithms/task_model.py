"""What every task model shares: MMEngine's forward modes and per-sample seeding."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModel

from ebtvision.registry import MODELS


def sample_generator(seed: int, data_samples: Optional[Sequence], position: int, stride: int,
                     offset: int = 0) -> torch.Generator:
    """A generator seeded from ``(seed, the sample's sample_idx, offset)``.

    Evaluation noise and initial candidates are drawn per sample from it, so every model
    and every run scores the same starting points whatever the batch composition.
    ``sample_idx`` falls back to ``position`` when the data sample has none.
    """
    sample_idx = position
    if data_samples is not None and 'sample_idx' in data_samples[position]:
        sample_idx = int(data_samples[position].sample_idx)
    return torch.Generator().manual_seed((seed * 1_000_003 + sample_idx) * stride + offset)


class TaskModel(BaseModel):
    """Base of the task models: ``forward`` dispatches MMEngine's three modes.

    ``mode='loss'`` -> :meth:`loss` (a dict of losses and logged values),
    ``mode='predict'`` -> :meth:`predict` (data samples with predictions),
    ``mode='tensor'`` -> :meth:`predict_tensor` (the raw prediction).

    Args:
        data_preprocessor: Config (or module) of the data preprocessor; default
            ``dict(type=DEFAULT_PREPROCESSOR)``. Built from this project's registry so that
            it resolves without a default scope.
        init_cfg: MMEngine init config.
    """

    #: Type of the data preprocessor built when the config names none.
    DEFAULT_PREPROCESSOR = 'ImageDataPreprocessor'

    def __init__(self, data_preprocessor=None, init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor or
                                             dict(type=self.DEFAULT_PREPROCESSOR))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.predict_tensor(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}"; use "loss", "predict" or "tensor"')

    def loss(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> dict:
        raise NotImplementedError

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> list:
        raise NotImplementedError

    def predict_tensor(self, inputs: torch.Tensor, data_samples: Optional[list] = None):
        raise NotImplementedError
