"""Visualisation backends by name: the fragments of ``configs/_base_/vis_backends/``.

Each fragment holds a ``visualizer`` whose ``vis_backends`` add one backend (TensorBoard,
W&B) to MMEngine's ``LocalVisBackend``. MMEngine's classic configs refuse a key that two
of a config's bases define, and every runtime already defines ``visualizer``
(``configs/_base_/default_runtime.py``), so a fragment cannot sit in a ``_base_`` list
beside it; ``--cfg-options`` cannot append dicts to a list either. The tools' option
``--vis-backend NAME`` (:func:`add_vis_backend_argument`, :func:`use_vis_backends`)
merges fragments into the loaded config instead; a config of one's own can copy the
fragment's ``visualizer`` line into its body.

Nothing here imports an optional package: a missing one is reported before the run
starts, in one line naming the command that installs it.
"""
import argparse
import importlib.util
import os
import os.path as osp
from typing import List, Sequence

from mmengine.config import Config

from .cli import exit_with_error
from .optional import require

#: Where the named fragments live (a source checkout, as the README installs ebtvision).
FRAGMENTS_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                         'configs', '_base_', 'vis_backends')

#: Backends whose package is optional and is not an extra of setup.cfg: type -> pip name.
_OTHER_PACKAGES = {'WandbVisBackend': 'wandb', 'MLflowVisBackend': 'mlflow',
                   'ClearMLVisBackend': 'clearml', 'NeptuneVisBackend': 'neptune',
                   'DVCLiveVisBackend': 'dvclive', 'AimVisBackend': 'aim'}


def fragment_names() -> List[str]:
    """Names ``--vis-backend`` accepts (the files of :data:`FRAGMENTS_DIR`)."""
    if not osp.isdir(FRAGMENTS_DIR):
        return []
    return sorted(name[:-3] for name in os.listdir(FRAGMENTS_DIR)
                  if name.endswith('.py') and not name.startswith('_'))


def _backend_type(backend) -> str:
    kind = backend.get('type') if isinstance(backend, dict) else type(backend).__name__
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))
    return name.rpartition('.')[2]  # 'mmengine.TensorboardVisBackend'


def check_vis_backends(cfg: Config) -> None:
    """Raise ``ImportError`` (one line naming the install command) when a backend of
    ``cfg.visualizer`` needs a package that is missing; MMEngine would only fail at its
    first write, with a traceback in the middle of the run."""
    for backend in (cfg.get('visualizer') or {}).get('vis_backends') or ():
        kind = _backend_type(backend)
        if kind == 'TensorboardVisBackend':
            require('tensorboard', 'TensorboardVisBackend')  # MissingExtraError
        elif kind in _OTHER_PACKAGES and importlib.util.find_spec(
                _OTHER_PACKAGES[kind]) is None:
            raise ImportError(f'{kind} needs {_OTHER_PACKAGES[kind]}, which is not '
                              f'installed: pip install {_OTHER_PACKAGES[kind]}')


def add_vis_backends(cfg: Config, fragments: Sequence[str]) -> None:
    """Append the backends of each fragment to ``cfg.visualizer.vis_backends``, in place.

    Args:
        cfg: A loaded config (its ``visualizer`` may be missing: MMEngine's default,
            a ``Visualizer`` with ``LocalVisBackend``, is filled in first).
        fragments: Names of :data:`FRAGMENTS_DIR` (``'tensorboard'``, ``'wandb'``) or
            paths of ``.py`` files holding ``visualizer = dict(vis_backends=[...])``.
            A backend type the config already has is not added twice.

    Raises:
        ValueError: An unknown name, a file that does not exist or holds no
            ``visualizer.vis_backends``.
    """
    if not fragments:
        return
    visualizer = cfg.get('visualizer') or dict(type='Visualizer', name='visualizer')
    backends = list(visualizer.get('vis_backends') or [dict(type='LocalVisBackend')])
    for fragment in fragments:
        path = fragment if fragment.endswith('.py') else osp.join(FRAGMENTS_DIR,
                                                                 f'{fragment}.py')
        if not osp.isfile(path):
            if fragment.endswith('.py'):
                raise ValueError(f'{fragment} does not exist')
            raise ValueError(f'unknown backend {fragment!r}; known: '
                             f'{", ".join(fragment_names())} (or the path of a .py file)')
        try:
            extra = (Config.fromfile(path).get('visualizer') or {}).get('vis_backends')
        except Exception as error:  # noqa: BLE001  a syntax error, a bad _base_...
            raise ValueError(f'{path} cannot be read: {type(error).__name__}: {error}')
        if not extra:
            raise ValueError(f'{path} defines no visualizer.vis_backends')
        present = {_backend_type(backend) for backend in backends}
        backends += [backend for backend in extra if _backend_type(backend) not in present]
    visualizer['vis_backends'] = backends
    cfg.visualizer = visualizer


def add_vis_backend_argument(parser: argparse.ArgumentParser) -> None:
    """The tools' ``--vis-backend NAME ...`` option (see :func:`use_vis_backends`)."""
    parser.add_argument(
        '--vis-backend', nargs='+', default=[], metavar='NAME',
        help='also log to these visualisation backends, next to the local files: '
        f'{" / ".join(fragment_names()) or "tensorboard / wandb"} '
        '(configs/_base_/vis_backends/NAME.py) or the path of such a .py file')


def use_vis_backends(cfg: Config, fragments: Sequence[str]) -> None:
    """``--vis-backend``: :func:`add_vis_backends` then :func:`check_vis_backends`, a
    mistake or a missing package ending in one ``error:`` line (exit 2)."""
    try:
        add_vis_backends(cfg, fragments)
        check_vis_backends(cfg)
    except (ValueError, ImportError) as error:
        exit_with_error(f'--vis-backend: {error}' if fragments else str(error))
