"""Optional dependencies: imported where they are first needed, a missing one named with
the extra that installs it.

The core install trains and tests the image models; what only some users need comes with
an extra of setup.cfg: ``video`` (decord, diffusers, scikit-video, av), ``demo`` (gradio),
``lpips``, ``probe`` (timm), ``text`` (tokenizers), ``tensorboard``; ``all`` is all of them.
:func:`require` imports an optional package or raises :class:`MissingExtraError`, an
``ImportError`` whose one-line message says what needs the package and the command that
installs it; a tool's ``main`` decorated with :func:`exit_on_missing_extra` prints that
line as ``error: ...`` (exit 2) instead of a traceback.

Nothing here imports an optional package, nor anything of ebtvision at import time: any
module may import this one without cycles.
"""
import functools
import importlib
import os.path as osp
import shlex
from types import ModuleType
from typing import Callable, Dict, Optional, Tuple, TypeVar

__all__ = ['OPTIONAL_PACKAGES', 'MissingExtraError', 'require', 'try_import', 'install_command',
           'exit_on_missing_extra']

#: Top-level import name -> (distribution pip installs, extra of setup.cfg that has it).
#: tests/test_utils/test_optional.py checks every pair against setup.cfg.
OPTIONAL_PACKAGES: Dict[str, Tuple[str, str]] = {
    'decord': ('decord', 'video'),
    'diffusers': ('diffusers', 'video'),
    'skvideo': ('scikit-video', 'video'),
    'av': ('av', 'video'),  # PyAV: H.264 .mp4 writing
    'gradio': ('gradio', 'demo'),
    'gradio_client': ('gradio', 'demo'),  # installed by gradio
    'lpips': ('lpips', 'lpips'),
    'timm': ('timm', 'probe'),
    'safetensors': ('safetensors', 'probe'),
    'tokenizers': ('tokenizers', 'text'),
    'tensorboard': ('tensorboard', 'tensorboard'),
}

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class MissingExtraError(ImportError):
    """An optional package is missing (or fails to import); the message is one line
    naming what needs it and how to install it.

    Attributes:
        package: The distribution to install (e.g. ``'diffusers'``).
        extra: The extra of setup.cfg that installs it (e.g. ``'video'``).
    """

    # One positional argument so that re-raisers that rebuild an exception from its
    # message (``type(error)(message)``, as PyTorch's DataLoader workers do) still can.
    def __init__(self, message: str, package: Optional[str] = None,
                 extra: Optional[str] = None) -> None:
        super().__init__(message, name=package)
        self.package = package
        self.extra = extra


def install_command(extra: str) -> str:
    """The pip command that installs ``extra``: into the source checkout this package runs
    from (editable, as the README installs it), else by the distribution's name."""
    if osp.isfile(osp.join(_ROOT, 'setup.cfg')):
        return 'pip install -e ' + shlex.quote(f'{_ROOT}[{extra}]')
    return 'pip install ' + shlex.quote(f'ebtvision[{extra}]')


def _lookup(module: str) -> Tuple[str, str, str]:
    top = module.partition('.')[0]
    if top not in OPTIONAL_PACKAGES:
        raise ValueError(f'{top!r} is not an optional package of ebtvision; known: '
                         f'{sorted(OPTIONAL_PACKAGES)}')
    return (top, ) + OPTIONAL_PACKAGES[top]


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``'diffusers'``, ``'skvideo.datasets'``), an optional package.

    Args:
        module: Dotted module name; its top-level package must be in
            :data:`OPTIONAL_PACKAGES`.
        purpose: What needs it, to start the message (e.g. ``'FrozenVAEEncoder (the SD-VAE
            latents of the video configs)'``).

    Returns:
        The imported module.

    Raises:
        MissingExtraError: The package is not installed, or is installed but fails to
            import (a missing dependency of its own: reinstalling the extra fixes that).
    """
    top, package, extra = _lookup(module)
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = getattr(error, 'name', None) or ''
        if missing == top or missing.startswith(top + '.'):
            state = 'which is not installed'
        else:  # installed, but one of its own imports fails
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            state = f'which cannot be imported ({reason})'
        raise MissingExtraError(f'{purpose} needs {package}, {state}: '
                                f'{install_command(extra)}', package, extra) from error


def try_import(module: str) -> Optional[ModuleType]:
    """``module`` (an optional package, see :func:`require`), or ``None`` where it cannot
    be imported: for callers that fall back to something else."""
    _lookup(module)
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


_Main = TypeVar('_Main', bound=Callable)


def exit_on_missing_extra(main: _Main) -> _Main:
    """Decorate a command-line tool's ``main``: a :class:`MissingExtraError` raised
    anywhere in it (building the model, the datasets, the metrics...) ends in one
    ``error: ...`` line and exit code 2, like the tools' other setup mistakes;
    ``EBTVISION_DEBUG=1`` keeps the traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except MissingExtraError as error:
            from .cli import debugging, exit_with_error
            if debugging():
                raise
            exit_with_error(str(error))

    return wrapper  # type: ignore[return-value]
