"""Any timm model as a frozen feature extractor: an outside reference point for probes."""
import os.path as osp
from typing import Optional

import torch
from mmengine.model import BaseModule

from ebtvision.fileio import load_checkpoint_weights_only
from ebtvision.registry import MODELS


def _load_state_dict(path: str) -> dict:
    """Weights from a .safetensors or a .pth/.bin file, never running code from it."""
    if path.endswith('.safetensors'):
        from ebtvision.utils.optional import require
        return require('safetensors.torch', f'reading {path}').load_file(path, device='cpu')
    # Weights-only torch.load with the project's small allow-list (no arbitrary pickles).
    state = load_checkpoint_weights_only(path, map_location='cpu')
    for key in ('state_dict', 'model'):  # common wrappers (mmengine, timm training)
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise RuntimeError(f'{path} holds a {type(state).__name__}, not a state dict')
    return state


@MODELS.register_module()
class TimmBackbone(BaseModule):
    """``timm.create_model(model_name)`` with local weights, giving patch tokens.

    Inputs arrive in [-1, 1] (the framework's convention) and are converted to the
    model's own normalisation (its ``pretrained_cfg`` mean / std). ``forward_features``
    returns tokens (B, N, D): a ViT's tokens after its prefix (class / register) tokens,
    or a CNN's final feature map flattened (NCHW and NHWC models); a model that already
    pools gives one token (B, 1, D). The probe pools them.

    Nothing is downloaded. To obtain weights, on a connected machine run
    ``torch.save(timm.create_model(name, pretrained=True).state_dict(), 'name.pth')``
    (or take the ``model.safetensors`` of its Hugging Face repository) and copy the file.

    Args:
        model_name: A timm model name, e.g. ``'vit_small_patch16_224'``, ``'resnet50'``.
        pretrained_path: Local weights (``.safetensors``, ``.pth``, ``.bin``); None keeps
            timm's random initialisation.
        img_size: Input size for models that take one (ViTs); None keeps the default.
        init_cfg: MMEngine init config.
        **timm_kwargs: Passed to ``timm.create_model`` (e.g. ``drop_path_rate``).

    Raises:
        FileNotFoundError: ``pretrained_path`` does not exist.
        KeyError: The file lacks weights the model needs.
    """

    def __init__(self, model_name: str, pretrained_path: Optional[str] = None,
                 img_size: Optional[int] = None, init_cfg=None, **timm_kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        # Imported here so the package imports without timm (the [probe] extra).
        from ebtvision.utils.optional import require
        timm = require('timm', 'TimmBackbone (linear probes on timm models)')
        if img_size is not None:
            timm_kwargs['img_size'] = img_size
        self.model_name = model_name
        self.model = timm.create_model(model_name, pretrained=False, num_classes=0,
                                       **timm_kwargs)
        if pretrained_path is not None:
            if not osp.isfile(pretrained_path):
                raise FileNotFoundError(
                    f'timm weights for {model_name!r} not found at {pretrained_path!r}. '
                    'Nothing is downloaded at run time: on a connected machine run '
                    f'torch.save(timm.create_model({model_name!r}, pretrained=True)'
                    f'.state_dict(), {osp.basename(pretrained_path)!r}) and copy the file here.')
            # strict=False: the classifier head (num_classes=0 drops it) is expected extra.
            missing, _ = self.model.load_state_dict(_load_state_dict(pretrained_path),
                                                    strict=False)
            if missing:
                raise KeyError(f'{pretrained_path} lacks {len(missing)} weights of '
                               f'{model_name!r}, e.g. {missing[:5]}')
        self._is_init = pretrained_path is not None  # keep loaded weights on init_weights()
        cfg = self.model.pretrained_cfg or {}
        self.register_buffer('mean', torch.tensor(cfg.get('mean', (0.5, ) * 3)).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(cfg.get('std', (0.5, ) * 3)).view(1, -1, 1, 1),
                             persistent=False)
        self.num_features = self.embed_dims = int(self.model.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens of a batch.

        Args:
            x: (B, 3, H, W) images in [-1, 1].

        Returns:
            (B, N, D) tokens (N = 1 for models whose features are already pooled).
        """
        x = ((x + 1) / 2 - self.mean) / self.std  # [-1, 1] -> [0, 1] -> the model's norm
        features = self.model.forward_features(x)
        if features.dim() == 4:  # feature map -> (B, h*w, C)
            fmt = getattr(self.model, 'output_fmt', 'NCHW')
            if getattr(fmt, 'value', fmt) == 'NHWC':  # timm's Format enum or a str
                return features.flatten(1, 2)
            return features.flatten(2).transpose(1, 2)
        if features.dim() == 2:  # pooled (B, D)
            return features[:, None]
        return features[:, getattr(self.model, 'num_prefix_tokens', 0):]
