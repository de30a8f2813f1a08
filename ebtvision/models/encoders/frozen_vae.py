"""Frozen Stable-Diffusion VAE (diffusers ``AutoencoderKL``) as a frame encoder.

The next-frame models (docs/method.md#video-next-frame-prediction) work on SD-VAE latent
means: a 224 px frame becomes a ``4 x 28 x 28`` latent (x 0.18215 with ``use_scaling``: the
reference's S1 and Transformer++ video jobs use the unscaled means, its S2 job the scaled
ones). Weights come from ``pretrained`` (a local ``save_pretrained`` folder or a Hugging
Face id already in the local cache) and are loaded offline only; they are not written into
training checkpoints unless ``save_weights=True``.
"""
import os.path as osp
import re
import warnings
from typing import Iterator, Optional, Union

import torch
from torch import nn

from ebtvision.registry import MODELS
from .base_encoder import BaseFrameEncoder

#: Architecture of stabilityai/sd-vae-ft-mse (the SD 1.x VAE): 4 blocks, downsampling 8,
#: 4 latent channels, ~84 M parameters. ``vae_cfg='sd'`` builds it with RANDOM weights,
#: which is only good for measuring speed and memory, never for training or evaluation.
SD_VAE_ARCH = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=('DownEncoderBlock2D', ) * 4,
    up_block_types=('UpDecoderBlock2D', ) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn='silu',
    latent_channels=4,
    norm_num_groups=32,
    sample_size=256,
    scaling_factor=0.18215,
)

#: Named architectures accepted as ``vae_cfg``.
VAE_ARCHS = {'sd': SD_VAE_ARCH}

DEFAULT_VAE_ID = 'stabilityai/sd-vae-ft-mse'

_DTYPES = {
    'float32': torch.float32, 'fp32': torch.float32,
    'float16': torch.float16, 'fp16': torch.float16, 'half': torch.float16,
    'bfloat16': torch.bfloat16, 'bf16': torch.bfloat16,
}

# A Hugging Face repository id: "owner/name" (used to tailor the how-to in the error).
_HUB_ID = re.compile(r'^[A-Za-z0-9][\w.-]*/[\w.-]+$')


def _resolve_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower().replace('torch.', '') in _DTYPES:
        return _DTYPES[dtype.lower().replace('torch.', '')]
    raise ValueError(f'dtype must be float32, float16 or bfloat16, got {dtype!r}')


def weights_not_found_message(pretrained: str, subfolder: Optional[str] = None,
                              reason: str = '') -> str:
    """The message of the error raised when ``pretrained`` cannot be loaded offline."""
    where = f'pretrained={pretrained!r}' + (f', subfolder={subfolder!r}' if subfolder else '')
    path = osp.abspath(osp.expanduser(pretrained))
    if osp.isdir(path):
        what = (f'the folder {path} holds no loadable AutoencoderKL (it needs config.json and '
                'diffusion_pytorch_model.safetensors or .bin'
                + (f' under {subfolder}/' if subfolder else '') + ')')
    else:
        what = (f'it is neither a local folder ({path} does not exist) nor in the local '
                'Hugging Face cache')
    if reason:
        what += f' [{reason}]'
    repo = pretrained if _HUB_ID.match(pretrained) and not osp.isdir(path) else DEFAULT_VAE_ID
    local = f'checkpoints/{repo.split("/")[-1]}'
    return (f'FrozenVAEEncoder could not load the VAE weights offline from {where}: {what}. '
            'Nothing is downloaded at run time. To provide the weights, on a machine with '
            f'internet run\n    huggingface-cli download {repo} --local-dir {local}\n'
            f'(`hf download {repo} --local-dir {local}` with huggingface_hub >= 1.0, or in '
            f'Python AutoencoderKL.from_pretrained({repo!r}).save_pretrained({local!r})), '
            f'copy the folder {local} to this machine and set '
            f'model.encoder.pretrained={local} (e.g. --cfg-options '
            f'model.encoder.pretrained={local}).')


def _diffusers():
    """diffusers, or a one-line error naming the extra that installs it."""
    from ebtvision.utils.optional import require
    return require('diffusers', 'FrozenVAEEncoder (the SD-VAE latents of the video configs)')


def load_pretrained_vae(pretrained: str, subfolder: Optional[str] = None,
                        dtype: torch.dtype = torch.float32) -> nn.Module:
    """Load a diffusers ``AutoencoderKL`` from a local folder or the local HF cache.

    Args:
        pretrained: A ``save_pretrained`` folder or a Hugging Face id (e.g.
            ``stabilityai/sd-vae-ft-mse``) already in the local cache.
        subfolder: Folder of the VAE inside ``pretrained`` (e.g. ``'vae'`` of a full
            Stable Diffusion repository).
        dtype: Dtype of the loaded weights.

    Raises:
        FileNotFoundError: With how to provide the weights, when nothing loadable is found.
    """
    # Imported here: diffusers takes seconds to import, and only this encoder needs it.
    AutoencoderKL = _diffusers().AutoencoderKL
    from diffusers.utils import is_accelerate_available

    try:
        # local_files_only: never download at run time. diffusers 0.42 prefers
        # .safetensors and falls back to a .bin file loaded with torch.load(weights_only=True)
        # (diffusers.models.model_loading_utils.load_state_dict), so no arbitrary pickle runs.
        with warnings.catch_warnings():
            # diffusers 0.42 passes a deprecated hub argument: a misleading "Downloading to
            # a local directory..." warning although nothing is downloaded.
            warnings.filterwarnings('ignore', message='.*local_dir_use_symlinks')
            return AutoencoderKL.from_pretrained(
                osp.expanduser(pretrained), subfolder=subfolder, local_files_only=True,
                torch_dtype=dtype, low_cpu_mem_usage=is_accelerate_available())
    except OSError as err:
        # diffusers 0.42 / huggingface_hub 2.x raise OSError (EnvironmentError) for a missing
        # folder, an id absent from the cache, a folder without config.json or without
        # weights; hub errors (LocalEntryNotFoundError...) are OSError subclasses too.
        reason = str(err).strip().splitlines()[0][:200] if osp.isdir(
            osp.expanduser(pretrained)) else ''
        raise FileNotFoundError(weights_not_found_message(pretrained, subfolder, reason)) \
            from err


def build_vae(vae_cfg: Union[str, dict], dtype: torch.dtype = torch.float32) -> nn.Module:
    """A randomly initialised ``AutoencoderKL`` from a config dict or a name in ``VAE_ARCHS``."""
    AutoencoderKL = _diffusers().AutoencoderKL

    if isinstance(vae_cfg, str):
        if vae_cfg not in VAE_ARCHS:
            raise ValueError(f'unknown vae_cfg {vae_cfg!r}; names: {sorted(VAE_ARCHS)} '
                             '(or give AutoencoderKL keyword arguments as a dict)')
        vae_cfg = VAE_ARCHS[vae_cfg]
    vae = AutoencoderKL(**dict(vae_cfg))
    return vae if dtype == torch.float32 else vae.to(dtype)


# --------------------------------------------------------------------- checkpoint hooks
# Module-level functions (not closures) so that deepcopy (EMA) and pickling keep working.
def _drop_vae_state(module: 'FrozenVAEEncoder', state_dict: dict, prefix: str,
                    local_metadata: dict) -> None:
    """state_dict post-hook: leave the frozen VAE out of checkpoints (it comes from pretrained)."""
    if module.save_weights:
        return
    vae_prefix = prefix + 'vae.'
    for key in [key for key in state_dict if key.startswith(vae_prefix)]:
        del state_dict[key]
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in [key for key in metadata if (key + '.').startswith(vae_prefix)]:
            del metadata[key]


def _remember_load_prefix(module: 'FrozenVAEEncoder', state_dict: dict, prefix: str, *args
                          ) -> None:
    """load_state_dict pre-hook: where this module sits in the state dict being loaded."""
    module._vae_load_prefix = prefix + 'vae.'


def _ignore_missing_vae(module: 'FrozenVAEEncoder', incompatible_keys) -> None:
    """load_state_dict post-hook: VAE keys absent from a checkpoint are not 'missing'."""
    vae_prefix = getattr(module, '_vae_load_prefix', None)
    if module.save_weights or vae_prefix is None:
        return
    # In place: both torch and mmengine read these lists after the hooks ran.
    incompatible_keys.missing_keys[:] = [
        key for key in incompatible_keys.missing_keys if not key.startswith(vae_prefix)
    ]


@MODELS.register_module()
class FrozenVAEEncoder(BaseFrameEncoder):
    """Frozen diffusers ``AutoencoderKL`` mapping frames to (scaled) latent means.

    :meth:`encode` returns the mean of the latent distribution (not a sample, so it is
    deterministic), times ``scaling_factor`` when ``use_scaling``; :meth:`decode` divides
    the factor back out and runs the VAE decoder. Frames go through the VAE in
    micro-batches of ``max_batch`` (memory), cast to ``dtype``; outputs are float32.

    Weights are loaded offline only (``local_files_only``). Give a local folder written by
    ``AutoencoderKL.save_pretrained`` (or ``huggingface-cli download ... --local-dir``), or
    a Hugging Face id already in the local cache; otherwise a :class:`FileNotFoundError`
    says how to provide them. Tests and speed benchmarks use ``pretrained=None`` with
    ``vae_cfg`` (a dict of ``AutoencoderKL`` arguments, or ``'sd'`` for the real SD-VAE
    architecture :data:`SD_VAE_ARCH`): random weights, for speed measurement only.

    The VAE stays a registered submodule (``.to(device)`` moves it), but its weights are
    left out of ``state_dict()`` unless ``save_weights``, and loading a checkpoint without
    them does not report them as missing. With random weights (``vae_cfg``) and
    ``save_weights=False`` a reloaded model gets a different random VAE.

    Args:
        pretrained: Hugging Face id or local folder of the VAE, or None with ``vae_cfg``.
        subfolder: Folder of the VAE inside ``pretrained`` (``'vae'`` of a full SD repo).
        scaling_factor: Latent scale (0.18215 for the SD 1.x VAE); None reads it from the
            VAE config.
        use_scaling: Multiply latents by ``scaling_factor`` (the reference's
            ``--sdxl_vae_standardization``).
        vae_cfg: ``AutoencoderKL`` keyword arguments or a name in :data:`VAE_ARCHS`, for a
            randomly initialised VAE (needs ``pretrained=None``).
        max_batch: Frames per VAE call; None for all at once.
        dtype: Compute and weight dtype: ``'float32'``, ``'float16'`` or ``'bfloat16'``
            (the half types are meant for CUDA; the SD 1.x VAE is fine in float16).
        save_weights: Write the VAE weights into ``state_dict()`` (and checkpoints).
        init_cfg: MMEngine init config (unused: weights are fixed at construction).
    """

    def __init__(self,
                 pretrained: Optional[str] = DEFAULT_VAE_ID,
                 subfolder: Optional[str] = None,
                 scaling_factor: Optional[float] = 0.18215,
                 use_scaling: bool = True,
                 vae_cfg: Union[None, str, dict] = None,
                 max_batch: Optional[int] = 32,
                 dtype: Union[str, torch.dtype] = 'float32',
                 save_weights: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if (pretrained is None) == (vae_cfg is None):
            raise ValueError('FrozenVAEEncoder needs exactly one of pretrained (weights) and '
                             'vae_cfg (random weights, e.g. vae_cfg="sd"); got '
                             f'pretrained={pretrained!r}, vae_cfg={vae_cfg!r}')
        if max_batch is not None and (int(max_batch) != max_batch or max_batch < 1):
            raise ValueError(f'max_batch must be a positive int or None, got {max_batch!r}')
        self.compute_dtype = _resolve_dtype(dtype)
        self.pretrained = pretrained
        if pretrained is not None:
            self.vae = load_pretrained_vae(str(pretrained), subfolder, self.compute_dtype)
        else:
            self.vae = build_vae(vae_cfg, self.compute_dtype)

        config = self.vae.config
        self.latent_channels = int(config.latent_channels)
        # Every block but the last halves the resolution (diffusers' Encoder).
        self.downsample_factor = 2**(len(config.block_out_channels) - 1)
        if scaling_factor is None:
            scaling_factor = config.scaling_factor
        self.scaling_factor = float(scaling_factor)
        if self.scaling_factor == 0:
            raise ValueError('scaling_factor must be non-zero')
        self.use_scaling = bool(use_scaling)
        self.max_batch = None if max_batch is None else int(max_batch)
        self.save_weights = bool(save_weights)

        # Hooks check self.save_weights when they run, so flipping it later works too.
        self.register_state_dict_post_hook(_drop_vae_state)
        self.register_load_state_dict_pre_hook(_remember_load_prefix)
        self.register_load_state_dict_post_hook(_ignore_missing_vae)
        self._freeze()

    def _chunks(self, tensor: torch.Tensor) -> Iterator[torch.Tensor]:
        """Micro-batches moved to the VAE's device and dtype."""
        param = next(self.vae.parameters())
        step = self.max_batch or max(len(tensor), 1)
        for chunk in tensor.split(step):
            yield chunk.to(device=param.device, dtype=param.dtype)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` frames in ``[-1, 1]`` -> ``(N, C, H / f, W / f)`` float32 latents.

        Returns the latent distribution's mean (times ``scaling_factor`` if
        ``use_scaling``), on the VAE's device.
        """
        self._check_frames(frames)
        means = [self.vae.encode(chunk).latent_dist.mean.float() for chunk in self._chunks(frames)]
        latents = torch.cat(means)
        return latents * self.scaling_factor if self.use_scaling else latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` latents -> ``(N, 3, h f, w f)`` float32 frames, clamped to [-1, 1]."""
        self._check_latents(latents)
        if self.use_scaling:
            latents = latents.float() / self.scaling_factor
        frames = [self.vae.decode(chunk).sample.float() for chunk in self._chunks(latents)]
        return torch.cat(frames).clamp_(-1.0, 1.0)

    def extra_repr(self) -> str:
        source = f'pretrained={self.pretrained!r}' if self.pretrained else 'random weights'
        return (f'{source}, scaling_factor={self.scaling_factor}, '
                f'use_scaling={self.use_scaling}, latent=({self.latent_channels}, H/'
                f'{self.downsample_factor}, W/{self.downsample_factor}), '
                f'dtype={self.compute_dtype}, save_weights={self.save_weights}')
