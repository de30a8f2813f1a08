"""Linear probe of a frozen backbone: what a denoiser learned about image classes."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model.weight_init import initialize
from torch import nn

from ebtvision.registry import MODELS
from ebtvision.structures import ClassifyDataSample
from ..thinking.options import check_test_cfg
from .task_model import TaskModel

POOLS = ('mean', 'max')


def _gt_label(sample) -> int:
    """The int ``gt_label`` of a data sample (BaseDataElement metainfo or dict)."""
    label = sample.get('gt_label', None) if isinstance(sample, dict) else getattr(
        sample, 'gt_label', None)
    if label is None:
        raise KeyError('LinearProbe needs `gt_label` in every data sample for mode="loss"')
    return int(torch.as_tensor(label).reshape(-1)[0])


@MODELS.register_module()
class LinearProbe(TaskModel):
    """A frozen backbone with a linear classifier on its mean final patch tokens.

    Features are ``backbone.forward_features(x, **feature_kwargs).mean(1)``: the final
    patch tokens before the energy (EBT) or output (DiT) layer, averaged
    (docs/method.md#linear-probes; the DiT is fed ``t = 0`` through ``feature_kwargs=dict(t=0)``). A denoiser
    checkpoint loads into it by name (``backbone.*``, e.g. with ``load_from`` or
    ``mmengine.runner.load_checkpoint``); its other weights (``thinker.*``, ...) are only
    reported as unexpected. :class:`~ebtvision.engine.LinearProbeLoop` trains ``head`` on
    cached features; ``mode='loss'`` also lets an ordinary train loop train it.

    Args:
        backbone: Config of the backbone (``BidirectionalEBT``, ``DiT``, ``TimmBackbone``):
            anything with ``forward_features(x, **kwargs) -> (B, N, D)`` and ``embed_dims``.
        num_classes: Classes of the probe.
        feature_kwargs: Extra arguments of ``forward_features`` (e.g. ``dict(t=0)``); an
            int or float ``t`` becomes a (B,) tensor.
        layers: Which token sets to pool and concatenate: ``-1`` is the final tokens
            (``forward_features``), ``i`` (or ``-k``) the output of ``backbone.blocks[i]``.
        pool: How tokens become one vector: ``'mean'`` (the paper) or ``'max'``.
        data_preprocessor: Config of the data preprocessor (``ImageDataPreprocessor``).
        test_cfg: Unused (accepted so the shared test tool can fill it in).
        init_cfg: MMEngine init config. ``Pretrained`` applies to the whole probe; any
            other initialiser only to the head, never to the frozen backbone.
    """

    def __init__(self, backbone: dict, num_classes: int, feature_kwargs: Optional[dict] = None,
                 layers: Sequence[int] = (-1, ), pool: str = 'mean',
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 test_cfg: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        check_test_cfg(test_cfg, (), type(self).__name__)  # reads none: any key is a typo
        if pool not in POOLS:
            raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
        self.pool = pool
        self.backbone = MODELS.build(backbone)
        self.backbone.requires_grad_(False)
        self.backbone.eval()
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
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.num_features, self.num_classes)

    def init_weights(self) -> None:
        """Initialise the head (and the backbone from its own ``init_cfg`` only).

        MMEngine's default would apply a probe-level initialiser (e.g. ``Normal`` on
        ``Linear``) to every submodule, re-randomising backbone layers; weights loaded
        afterwards (``load_from``) replace the backbone either way.
        """
        if hasattr(self.backbone, 'init_weights'):
            self.backbone.init_weights()
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        for cfg in (c for c in cfgs if c):
            initialize(self if cfg.get('type') == 'Pretrained' else self.head, cfg)
        self._is_init = True

    def train(self, mode: bool = True) -> 'LinearProbe':
        """Set the mode of the head; the frozen backbone stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def _feature_kwargs(self, batch_size: int, device: torch.device) -> dict:
        kwargs = dict(self.feature_kwargs)
        t = kwargs.get('t')
        if isinstance(t, (int, float)) or (torch.is_tensor(t) and t.dim() == 0):
            # One timestep for the whole batch, as the DiT's (B,) ``t`` expects.
            kwargs['t'] = torch.full((batch_size, ), int(t), dtype=torch.long, device=device)
        return kwargs

    def _pool(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() == 2:  # already one vector per image
            return tokens
        return tokens.mean(dim=1) if self.pool == 'mean' else tokens.amax(dim=1)

    @torch.no_grad()
    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Frozen features of a batch.

        Args:
            inputs: (B, 3, H, W) images in [-1, 1] (the data preprocessor's output).

        Returns:
            (B, num_features): the pooled tokens of each of ``layers``, concatenated.
        """
        kwargs = self._feature_kwargs(inputs.shape[0], inputs.device)
        captured: Dict[int, torch.Tensor] = {}
        # Block outputs are caught by hooks, so backbones need no probe-specific code.
        hooks = [
            self.backbone.blocks[layer].register_forward_hook(
                lambda module, args, out, layer=layer: captured.__setitem__(layer, out))
            for layer in self.blocks
        ]
        try:
            captured[-1] = self.backbone.forward_features(inputs, **kwargs)
        finally:
            for hook in hooks:
                hook.remove()
        return torch.cat([self._pool(captured[layer]) for layer in self.layers], dim=-1)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        """Run the probe.

        Args:
            inputs: (B, 3, H, W) images in [-1, 1].
            data_samples: ``ClassifyDataSample`` (or dicts) with ``gt_label`` for
                ``'loss'``; filled with predictions in ``'predict'``.
            mode: ``'tensor'``: (B, num_features) features; ``'predict'``: the samples with
                ``pred_score`` (softmax, (C,)) and ``pred_label`` (int), new
                ``ClassifyDataSample`` when none are given; ``'loss'``:
                ``dict(loss=cross-entropy of the head)``.

        Raises:
            RuntimeError: An unknown mode.
        """
        if mode not in ('tensor', 'predict', 'loss'):
            raise RuntimeError(f'Invalid mode "{mode}"; use "loss", "predict" or "tensor"')
        features = self.extract_features(inputs)
        if mode == 'tensor':
            return features
        logits = self.head(features)
        if mode == 'loss':
            if data_samples is None:
                raise ValueError('mode="loss" needs data_samples with `gt_label`')
            labels = torch.tensor([_gt_label(s) for s in data_samples], device=logits.device)
            return dict(loss=F.cross_entropy(logits, labels))
        if data_samples is None:  # e.g. an inferencer with bare images
            data_samples = [ClassifyDataSample() for _ in range(len(logits))]
        scores = logits.softmax(dim=-1).detach().cpu()
        for sample, score in zip(data_samples, scores):
            if isinstance(sample, dict):
                sample.update(pred_score=score, pred_label=int(score.argmax()))
            else:
                sample.pred_score = score
                sample.pred_label = int(score.argmax())
        return data_samples
