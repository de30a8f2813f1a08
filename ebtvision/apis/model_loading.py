"""Build a config's model and load a user's checkpoint into it, weights-only.

What the demos and the inferencers share: a config (path or :class:`Config`), a
checkpoint path, and one error type whose message says what is wrong and where.
"""
import copy
import os
import os.path as osp
from typing import Optional, Union

import torch
from mmengine.config import Config


class ModelLoadError(RuntimeError):
    """The config or the checkpoint cannot give a model; the message says why."""


def load_config(config: Union[str, os.PathLike, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """Read a config file (or copy a :class:`Config`) and apply ``cfg_options``."""
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        path = osp.expanduser(str(config))
        if not osp.isfile(path):
            raise ModelLoadError(f'config {path} does not exist')
        try:
            cfg = Config.fromfile(path)
        except Exception as error:  # noqa: BLE001  syntax errors, bad _base_ paths...
            raise ModelLoadError(f'config {path} cannot be read: {error}') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise ModelLoadError(f'config {getattr(cfg, "filename", "")} defines no model')
    return cfg


def _fit_report(model: torch.nn.Module, state: dict):
    """Missing / unexpected / mismatched weights of ``state`` for ``model``."""
    expected = model.state_dict()
    # Frozen encoders may be left out of checkpoints (they are built from their weights),
    # and extra state (a replay buffer's contents) is not a weight.
    missing = [k for k in expected if k not in state and not k.startswith('encoder.')
               and not k.endswith('_extra_state')]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}' for k, v in expected.items()
                  if k in state and hasattr(state[k], 'shape') and state[k].shape != v.shape]
    return missing, unexpected, mismatched


def init_model(config: Union[str, os.PathLike, Config],
               checkpoint: Optional[str],
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build the config's model, load ``checkpoint`` weights-only, put it in eval mode.

    Args:
        config: Config file or :class:`Config`.
        checkpoint: Checkpoint file written by ``tools/train.py`` (or a state dict saved
            with ``torch.save``), or a URL MMEngine knows (``http(s)://``, ``s3://``...).
            It is loaded weights-only: nothing in it is executed. (This installs
            :func:`ebtvision.fileio.install_safe_checkpoint_io` for the process.)
            ``None`` keeps the random initialisation (for tests and smoke runs).
        device: Where the model runs.
        cfg_options: Overrides merged into the config first.

    Raises:
        ModelLoadError: Missing or unreadable config/checkpoint, a model that cannot be
            built (e.g. encoder weights not available offline), or a checkpoint whose
            weights do not fit the model (names and shapes are listed).
    """
    from mmengine.runner import load_checkpoint

    from ebtvision.fileio import install_safe_checkpoint_io
    from ebtvision.registry import MODELS
    from ebtvision.utils import register_all_modules
    install_safe_checkpoint_io()  # every checkpoint source loads weights-only
    register_all_modules(init_default_scope=False)
    cfg = load_config(config, cfg_options)
    if checkpoint is not None and '://' not in str(checkpoint) and not osp.isfile(
            osp.expanduser(str(checkpoint))):
        raise ModelLoadError(f'checkpoint {checkpoint} does not exist')
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise ModelLoadError(f'device {device} requested but no CUDA device is available')
    try:
        model = MODELS.build(copy.deepcopy(cfg.model))
    except (FileNotFoundError, OSError) as error:  # e.g. VAE weights not available offline
        raise ModelLoadError(f'cannot build the model of the config: {error}') from None
    if checkpoint is not None:
        try:
            source = str(checkpoint) if '://' in str(checkpoint) else osp.expanduser(
                str(checkpoint))
            loaded = load_checkpoint(model, source, map_location='cpu',
                                     strict=False, logger='silent')
        except (RuntimeError, FileNotFoundError) as error:
            raise ModelLoadError(str(error)) from None
        state = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else {}
        state = {k[len('module.'):] if k.startswith('module.') else k: v
                 for k, v in state.items()}
        missing, unexpected, mismatched = _fit_report(model, state)
        if missing or mismatched:
            details = []
            if missing:
                details.append(f'{len(missing)} weight(s) missing, e.g. {missing[:3]}')
            if unexpected:
                details.append(f'{len(unexpected)} unexpected, e.g. {unexpected[:3]}')
            if mismatched:
                details.append(f'{len(mismatched)} of another shape (checkpoint vs model), '
                               f'e.g. {mismatched[:3]}')
            raise ModelLoadError(f'checkpoint {checkpoint} does not fit the model of the '
                                 f'config ({type(model).__name__}): ' + '; '.join(details))
        if unexpected:
            print(f'note: {len(unexpected)} checkpoint entries not used by the model, e.g. '
                  f'{unexpected[:3]}')
    model.cfg = cfg
    return model.to(device).eval()
