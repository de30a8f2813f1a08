"""What every parity family shares: importing the reference, mapping weights into ours,
equal random draws, and the comparison of losses and gradients."""
import contextlib
import os.path as osp
import re
import sys
import types
from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

import torch
from torch import nn

from ebtvision.reference import StateDictMapping

# float64 on both sides: what is left after the mapping is rounding, far below this.
TOLERANCE = 1e-9


@dataclass
class FamilyResult:
    """One row of the parity table.

    ``eval_rel`` is the max relative difference of the evaluation protocol's output
    (denoisers: the thinking trajectory / the reverse process) or None where the
    family has none. ``why`` explains a deliberate difference; such a family does not
    count as matching.
    """
    family: str
    loss_ours: float
    loss_ref: float
    grad_rel: float
    num_grads: int
    eval_rel: Optional[float] = None
    why: str = ''

    @property
    def loss_rel(self) -> float:
        return abs(self.loss_ours - self.loss_ref) / max(abs(self.loss_ref), 1e-300)

    @property
    def matched(self) -> bool:
        close = [self.loss_rel, self.grad_rel] + ([] if self.eval_rel is None else
                                                  [self.eval_rel])
        return not self.why and self.num_grads > 0 and all(v <= TOLERANCE for v in close)


class HParams(dict):
    """The attribute-dict Lightning gives ``self.hparams``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error

    def __setattr__(self, name, value):
        self[name] = value


class _IdentityVAE(nn.Module):
    """Stands in for diffusers' AutoencoderKL: ``encode(x).latent_dist.mean`` is ``x``,
    so a family feeds latents (B*(S+1), 4, h, w) where the reference expects frames."""

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        return cls()

    def encode(self, x):
        return types.SimpleNamespace(latent_dist=types.SimpleNamespace(mean=x.clone()))


def install_reference_stubs() -> None:
    """Stand-ins for packages the reference imports but parity never needs."""

    class LightningModule(nn.Module):
        # What the reference's loss wrappers read of their Lightning trainer: a step
        # that never logs images.
        trainer = types.SimpleNamespace(
            global_step=1, accumulate_grad_batches=1,
            fit_loop=types.SimpleNamespace(epoch_loop=types.SimpleNamespace(
                batch_progress=types.SimpleNamespace(
                    current=types.SimpleNamespace(completed=0)))))

        def __init__(self, *args, **kwargs):
            super().__init__()
            self.hparams = HParams(log_image_every_n_steps=10**9)

        @property
        def device(self):
            return next(self.parameters()).device

    stubs = {
        'pytorch_lightning': dict(LightningModule=LightningModule),
        'torchmetrics': dict(Accuracy=object),
        'diffusers': dict(AutoencoderKL=_IdentityVAE),
    }
    for name, attrs in stubs.items():
        module = sys.modules.get(name)
        if module is None or not getattr(module, '_parity_stub', False):
            module = types.ModuleType(name)
            module._parity_stub = True
            sys.modules[name] = module
        module.__dict__.update(attrs)


def import_reference(path: str) -> str:
    """Put the reference checkout (with ``model/`` and ``inference/``) on ``sys.path``."""
    path = osp.abspath(path)
    for needed in ('model/img/ebt_denoise.py', 'model/vid/ebt.py', 'model/nlp/ebt.py'):
        if not osp.isfile(osp.join(path, needed)):
            raise FileNotFoundError(f'--reference-repo {path}: {needed} is missing (export '
                                    "the reference's model/ and inference/ folders there)")
    install_reference_stubs()
    if path not in sys.path:
        sys.path.insert(0, path)
    _full_precision_schedule()
    return path


def _full_precision_schedule() -> None:
    """The reference reads its diffusion coefficients through ``_extract_into_tensor``,
    which casts them to float32; parity runs in float64, so they are read in the default
    dtype instead (the values are the same float64 numbers before that cast)."""
    from model.diffusion import gaussian_diffusion

    def extract(arr, timesteps, broadcast_shape):
        values = torch.from_numpy(arr).to(device=timesteps.device)[timesteps]
        values = values.to(torch.get_default_dtype())
        return values.reshape(values.shape + (1, ) * (len(broadcast_shape) - values.dim())) \
            + torch.zeros(broadcast_shape, device=timesteps.device)

    gaussian_diffusion._extract_into_tensor = extract


def perturb_zero_weights(model: nn.Module, std: float = 0.02) -> None:
    """Re-draw every all-zero tensor (adaLN-Zero, zero-initialised heads), so that no
    gradient is trivially zero on both sides."""
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 0 and not param.detach().any():
                param.normal_(0.0, std)


def load_mapped(ours: nn.Module, reference: nn.Module, mapping: StateDictMapping,
                ours_only: Iterable[str] = ()) -> None:
    """Copy the reference's weights into ours through ``mapping`` (what the converter
    does). Every parameter of ours must receive a value, except those matching
    ``ours_only`` (e.g. a frozen encoder the reference runs outside the model)."""
    converted = mapping.convert(dict(reference.state_dict()))
    own = ours.state_dict()
    extra = sorted(set(converted) - set(own))
    missing = sorted(key for key in set(own) - set(converted)
                     if not any(re.fullmatch(p, key) for p in ours_only))
    if extra or missing:
        raise AssertionError(f'mapping mismatch: not in ours {extra[:5]}, not set {missing[:5]}')
    for key, value in converted.items():
        if own[key].shape != value.shape:
            raise AssertionError(f'{key}: ours {tuple(own[key].shape)}, reference '
                                 f'{tuple(value.shape)}')
    ours.load_state_dict(converted, strict=False)


def gradient_difference(ours: nn.Module, reference: nn.Module,
                        mapping: StateDictMapping) -> Tuple[float, int, str]:
    """``(max relative difference, gradients compared, worst name)``: every reference
    gradient, mapped to our names, against ours; a gradient one side lacks counts as
    a difference of 1."""
    theirs = {name: (param.grad if param.grad is not None else torch.zeros_like(param))
              for name, param in reference.named_parameters() if param.requires_grad}
    theirs = mapping.convert(theirs)
    mine = dict(ours.named_parameters())
    worst, worst_name = 0.0, ''
    for name, grad in theirs.items():
        param = mine.get(name)
        if param is None or param.grad is None:
            diff = 0.0 if not grad.any() else 1.0
        else:
            diff = relative(param.grad, grad)
        if diff > worst:
            worst, worst_name = diff, name
    for name, param in mine.items():  # learnable here, frozen or absent there
        if param.requires_grad and name not in theirs and param.grad is not None \
                and param.grad.any():
            worst, worst_name = 1.0, name
    return worst, len(theirs), worst_name


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a - b| / max|b|`` (shapes must agree)."""
    if a.shape != b.shape:
        return float('inf')
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


@contextlib.contextmanager
def same_random_draws(fixed_randint: bool = False, size: int = 1 << 20):
    """Make both implementations draw equal random numbers, whatever shapes and order.

    Every Gaussian (uniform) draw of n values - ``torch.randn`` / ``rand`` and their
    ``_like`` forms, positional or ``size=`` - returns the first n values of one fixed
    stream. Shapes may differ between the two sides (ours draws a video start as
    (B, T, 4, 28, 28) where the reference draws (B, T, 3136); with a replay buffer the
    reference draws B + k rows and overwrites k), the values agree. With
    ``fixed_randint``, ``torch.randint(low, high, ...)`` returns ``high - 1`` (e.g. the
    most final-landscape steps); otherwise a family fixes its integer draws itself.
    """
    generator = torch.Generator().manual_seed(20240614)
    streams = dict(normal=torch.randn(size, generator=generator, dtype=torch.float64),
                   uniform=torch.rand(size, generator=generator, dtype=torch.float64))
    names = ('randn', 'rand', 'randn_like', 'rand_like', 'randint')
    originals = {name: getattr(torch, name) for name in names}

    def draw(kind, shape, dtype=None, device=None):
        count = int(torch.Size(shape).numel())
        if count > size:
            raise ValueError(f'a draw of {count} values exceeds the {size}-value stream')
        return streams[kind][:count].reshape(shape).to(
            dtype=dtype or torch.get_default_dtype(), device=device or 'cpu')

    def sized(kind):
        def sample(*shape, size=None, generator=None, dtype=None, device=None, **kwargs):
            if size is not None:
                shape = (size, )
            if len(shape) == 1 and not isinstance(shape[0], int):
                shape = tuple(shape[0])
            return draw(kind, shape, dtype, device)
        return sample

    def like(kind):
        def sample(tensor, dtype=None, device=None, **kwargs):
            return draw(kind, tensor.shape, dtype or tensor.dtype, device or tensor.device)
        return sample

    def randint(low, high=None, size=(), generator=None, dtype=torch.long, device=None,
                **kwargs):
        low, high = (0, low) if high is None else (low, high)
        return torch.full(tuple(size), high - 1, dtype=dtype, device=device)

    torch.randn, torch.rand = sized('normal'), sized('uniform')
    torch.randn_like, torch.rand_like = like('normal'), like('uniform')
    if fixed_randint:
        torch.randint = randint
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(torch, name, function)


@contextlib.contextmanager
def float_in_default_dtype():
    """``Tensor.float()`` casts to the default dtype while active: the reference casts to
    float32 in places (RMSNorm, rotary tables, softmax, final norm), and parity runs in
    float64."""
    original = torch.Tensor.float

    def to_default(self, *args, **kwargs):
        return self.to(torch.get_default_dtype())

    torch.Tensor.float = to_default
    try:
        yield
    finally:
        torch.Tensor.float = original
