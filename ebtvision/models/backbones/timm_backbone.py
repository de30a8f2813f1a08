"""Any timm model as a frozen feature extractor: an outside reference point for probes."""
import os.path as osp
from typing import Optional

import torch
from mmengine.model import BaseModule

from ebtvision.registry import MODELS


def _load_state_dict(path: str) -> dict:
    """Weights from a .safetensors or a .pth/.bin file, never running code from it."""
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path)
    state = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('state_dict', 'model'):  # common wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


@MODELS.register_module()
class TimmBackbone(BaseModule):
    """``timm.create_model(model_name)`` with local weights, giving patch tokens.

    Inputs arrive in [-1, 1] (the framework's convention) and are converted to the
    model's own normalisation (its ``pretrained_cfg`` mean / std). ``forward_features``
    returns tokens (B, N, D): a ViT's tokens after its prefix (class) tokens, or a CNN's
    final feature map flattened; the probe averages them.

    Args:
        model_name: A timm model name, e.g. ``'vit_small_patch16_224'``, ``'resnet50'``.
        pretrained_path: Local weights (``.safetensors``, ``.pth``, ``.bin``). Nothing is
            downloaded; None keeps timm's random initialisation.
        **timm_kwargs: Passed to ``timm.create_model`` (e.g. ``img_size=128``).
    """

    def __init__(self, model_name: str, pretrained_path: Optional[str] = None,
                 init_cfg=None, **timm_kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        import timm  # optional at import time of the package
        self.model = timm.create_model(model_name, pretrained=False, num_classes=0,
                                       **timm_kwargs)
        if pretrained_path is not None:
            if not osp.isfile(pretrained_path):
                raise FileNotFoundError(
                    f'timm weights for {model_name!r} not found at {pretrained_path!r}. '
                    'Nothing is downloaded at run time: on a connected machine run '
                    f'torch.save(timm.create_model({model_name!r}, pretrained=True)'
                    f'.state_dict(), {osp.basename(pretrained_path)!r}) and copy the file here.')
            missing, unexpected = self.model.load_state_dict(
                _load_state_dict(pretrained_path), strict=False)
            if missing:
                raise KeyError(f'{pretrained_path} lacks {len(missing)} weights of '
                               f'{model_name!r}, e.g. {missing[:5]}')
        self._is_init = pretrained_path is not None  # keep loaded weights on init_weights()
        cfg = self.model.pretrained_cfg
        self.register_buffer('mean', torch.tensor(cfg.get('mean', (0.5, ) * 3)).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(cfg.get('std', (0.5, ) * 3)).view(1, 3, 1, 1),
                             persistent=False)
        self.embed_dims = int(self.model.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> tokens (B, N, D)."""
        x = ((x + 1) / 2 - self.mean) / self.std
        features = self.model.forward_features(x)
        if features.dim() == 4:  # CNN: (B, C, h, w) -> (B, h*w, C)
            return features.flatten(2).transpose(1, 2)
        return features[:, getattr(self.model, 'num_prefix_tokens', 0):]
