"""Linear probe of a frozen backbone: what a denoiser learned about image classes."""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from ebtvision.registry import MODELS


@MODELS.register_module()
class LinearProbe(BaseModel):
    """A frozen backbone with a linear classifier on its mean final patch tokens.

    Features are ``backbone.forward_features(x, **feature_kwargs).mean(1)``: the final
    patch tokens before the energy (EBT) or output (DiT) layer, averaged (ebt-method.md
    section 4; the DiT is fed ``t = 0`` through ``feature_kwargs=dict(t=0)``). A denoiser
    checkpoint loads into it by name (``backbone.*``); its other weights are ignored.
    :class:`~ebtvision.engine.LinearProbeLoop` trains ``head`` on cached features.

    Args:
        backbone: Config of the backbone (``BidirectionalEBT``, ``DiT``, ...).
        num_classes: Classes of the probe.
        feature_kwargs: Extra arguments of ``forward_features`` (e.g. ``dict(t=0)``).
        layers: Which token sets to average and concatenate: ``-1`` is the final tokens
            (``forward_features``), ``i`` (or ``-k``) the output of ``backbone.blocks[i]``.
        data_preprocessor: Config of the data preprocessor.
        test_cfg: Unused (accepted so the shared test tool can fill it in).
        init_cfg: MMEngine init config.
    """

    def __init__(self, backbone: dict, num_classes: int, feature_kwargs: Optional[dict] = None,
                 layers: Sequence[int] = (-1, ), data_preprocessor: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg=None) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor or
                                             dict(type='ImageDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.backbone.requires_grad_(False)
        self.feature_kwargs = dict(feature_kwargs or {})
        self.layers = tuple(int(layer) for layer in layers)
        if not self.layers:
            raise ValueError('layers must name at least one token set, e.g. (-1, )')
        self.blocks = [layer for layer in self.layers if layer != -1]
        if self.blocks:
            blocks = getattr(self.backbone, 'blocks', None)
            if blocks is None:
                raise ValueError(f'{type(self.backbone).__name__} has no `blocks`; only '
                                 'layers=(-1, ) (its final tokens) can be probed')
            for layer in self.blocks:
                if not -len(blocks) <= layer < len(blocks):
                    raise ValueError(f'layer {layer} outside the {len(blocks)} blocks')
        self.num_features = int(self.backbone.embed_dims) * len(self.layers)
        self.head = nn.Linear(self.num_features, num_classes)

    def train(self, mode: bool = True) -> 'LinearProbe':
        super().train(mode)
        self.backbone.eval()  # frozen: never in training mode
        return self

    @torch.no_grad()
    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [-1, 1] -> (B, num_features) mean final patch tokens."""
        kwargs = dict(self.feature_kwargs)
        if 't' in kwargs:  # one timestep for the whole batch
            kwargs['t'] = torch.full((inputs.shape[0], ), int(kwargs['t']), device=inputs.device)
        captured = {}
        # Block outputs are caught by hooks, so backbones need no probe-specific code.
        hooks = [
            self.backbone.blocks[layer].register_forward_hook(
                lambda module, args, out, layer=layer: captured.__setitem__(layer, out))
            for layer in self.blocks
        ]
        try:
            final = self.backbone.forward_features(inputs, **kwargs)
        finally:
            for hook in hooks:
                hook.remove()
        captured[-1] = final
        return torch.cat([captured[layer].mean(dim=1) for layer in self.layers], dim=-1)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        """``'tensor'``: features; ``'predict'``: samples with ``pred_score``;
        ``'loss'``: cross-entropy of the head against ``gt_label``."""
        if mode == 'tensor':
            return self.extract_features(inputs)
        logits = self.head(self.extract_features(inputs))
        if mode == 'loss':
            labels = torch.tensor([int(s.gt_label) for s in data_samples], device=logits.device)
            return dict(loss=F.cross_entropy(logits, labels))
        if mode == 'predict':
            scores = logits.softmax(dim=-1)
            for sample, score in zip(data_samples, scores):
                sample.pred_score = score.detach().cpu()
            return data_samples
        raise RuntimeError(f'Invalid mode "{mode}"; use "loss", "predict" or "tensor"')
