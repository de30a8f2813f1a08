"""The core install works without any extra: every ebtvision module imports and the image
quick-start trains, in a process where only the distributions that setup.cfg's
install_requires brings in (and what they require) can be imported; a video config that
needs a missing extra ends in one ``error:`` line naming it.

The allow-list is computed from the installed distributions' metadata, so a new import of
a package that only an extra (or nothing) installs fails here, not on a user's machine.
"""
import configparser
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from importlib import metadata
from typing import Dict, Iterable, Set

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from ebtvision.utils.optional import OPTIONAL_PACKAGES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.slow

#: Importable in any environment pip makes (a venv has pip; setuptools may be there), and
#: the folders of this repository (some distributions wrongly install a 'tests' package).
ALWAYS_THERE = {'pip', 'setuptools', 'pkg_resources', '_distutils_hack', 'wheel', 'ebtvision',
                'tests', 'tools', 'configs', 'demo'}


def _name(dist_name: str) -> str:
    return re.sub(r'[-_.]+', '-', dist_name).lower()


def _core_requirements() -> Iterable[Requirement]:
    parser = configparser.ConfigParser()
    parser.read(osp.join(ROOT, 'setup.cfg'))
    for line in parser['options']['install_requires'].splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            yield Requirement(line)


def _closure() -> Set[str]:
    """Normalised names of the core requirements and, recursively, of what they require
    (markers evaluated here; extras' requirements only where asked for)."""
    env = default_environment()
    seen: Set[str] = set()
    todo = [(req, frozenset()) for req in _core_requirements()]
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not any(
                req.marker.evaluate({**env, 'extra': extra}) for extra in extras or {''}):
            continue
        name = _name(req.name)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing of it can be imported anyway
        seen.add(name)
        wanted = frozenset(req.extras)
        for line in dist.requires or ():
            todo.append((Requirement(line), wanted))
    return seen


def _top_level_names(dist) -> Set[str]:
    """Top-level import names a distribution installs (from its RECORD)."""
    names = set()
    for path in dist.files or ():
        first = path.parts[0]
        if first.endswith(('.dist-info', '.egg-info', '.data')) or first in ('..', '__pycache__'):
            continue
        if len(path.parts) == 1:
            if path.suffix in ('.py', '.so', '.pyd') or '.cpython-' in path.name:
                names.add(path.name.split('.')[0])
        else:
            names.add(first)
    return {name for name in names if name.isidentifier()}


def blocked_modules() -> Dict[str, str]:
    """Top-level module -> distribution, for every installed distribution outside the
    core closure."""
    core = _closure()
    allowed = set(ALWAYS_THERE)
    by_name = {}
    for dist in metadata.distributions():
        names = _top_level_names(dist)
        if _name(dist.metadata['Name']) in core | {'ebtvision'}:  # with its editable finder
            allowed |= names
        else:
            by_name.update({name: dist.metadata['Name'] for name in names})
    return {name: dist for name, dist in by_name.items() if name not in allowed}


SITECUSTOMIZE = '''
import sys

BLOCKED = frozenset({blocked!r})


class _OnlyCore:
    """Wraps an import finder so that it finds nothing outside the core install: imports
    of those packages fail and importlib.util.find_spec gives None, as if not installed."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in BLOCKED:
            return None
        find = getattr(self.finder, 'find_spec', None)
        return find(name, path, target) if find is not None else None

    def __getattr__(self, attr):  # invalidate_caches, find_distributions...
        return getattr(self.finder, attr)


sys.meta_path[:] = [_OnlyCore(finder) for finder in sys.meta_path]
'''

# Checks the blocking (optional packages unimportable and unfound, core ones importable),
# imports every module of the package, then checks that nothing blocked slipped in.
IMPORT_ALL = '''
import importlib, importlib.util, json, pkgutil, sys
import sitecustomize

def importable(name):
    try:
        importlib.import_module(name)
        return True
    except ModuleNotFoundError:
        return False

probe = {name: (importable(name), importlib.util.find_spec(name) is not None)
         for name in sys.argv[1:]}
import ebtvision
failed = {}
names = ['ebtvision'] + [m.name for m in pkgutil.walk_packages(ebtvision.__path__, 'ebtvision.')]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = f'{type(error).__name__}: {error}'
from ebtvision.utils import register_all_modules
register_all_modules()
loaded = sorted(m for m in sys.modules if m.partition('.')[0] in sitecustomize.BLOCKED)
print(json.dumps(dict(probe=probe, count=len(names), failed=failed, loaded=loaded)))
'''
CORE_MODULES = ('torch', 'torchvision', 'mmengine', 'cv2', 'numpy', 'kornia', 'skimage',
                'matplotlib', 'PIL', 'tqdm')


@pytest.fixture(scope='module')
def core_env(tmp_path_factory):
    """Environment variables for a subprocess that sees only the core install."""
    blocked = blocked_modules()
    # The test means something only if the optional packages are blocked (or absent).
    for module in OPTIONAL_PACKAGES:
        assert module in blocked or not _installed(module), module
    folder = tmp_path_factory.mktemp('core_only')
    with open(folder / 'sitecustomize.py', 'w', encoding='utf-8') as file:
        file.write(SITECUSTOMIZE.format(blocked=sorted(blocked)))
    return {**os.environ, 'PYTHONPATH': os.pathsep.join([str(folder), ROOT])}


def _installed(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def _run(args, env, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_every_module_imports_without_extras(core_env):
    optional = sorted(OPTIONAL_PACKAGES)
    result = _run(['-c', IMPORT_ALL, *optional, *CORE_MODULES], core_env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # The blocking works as a missing install would (imports fail, find_spec finds
    # nothing) and leaves the core alone: otherwise this test would prove nothing.
    assert all(report['probe'][name] == [False, False] for name in optional), report['probe']
    assert all(report['probe'][name] == [True, True] for name in CORE_MODULES), report['probe']
    assert report['count'] > 100  # the walk found the package's modules
    assert report['failed'] == {}
    assert report['loaded'] == []


def test_image_quick_start_trains_without_extras(core_env, tmp_path):
    work = str(tmp_path / 'work')
    # Two iterations of batch 2 and a validation on two photos keep it to seconds.
    result = _run(['tools/train.py', 'configs/quickstart/ebt_denoise_skimage.py', '--work-dir',
                   work, '--cfg-options', 'train_cfg.max_iters=2', 'train_dataloader.batch_size=2',
                   'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                   'val_dataloader.dataset.datasets.0.file_list=[astronaut.png]',
                   'val_dataloader.dataset.datasets.1.file_list=[coffee.png]'], core_env)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    # validation ran at the end, with the core metrics (PSNR, SSIM through kornia)
    assert 'denoise/ssim@0.1' in result.stdout + result.stderr


def test_video_config_without_diffusers_is_one_line_naming_the_extra(core_env, tmp_path):
    data = str(tmp_path / 'ssv2')  # exists, so the data check passes and the model is built
    os.makedirs(data)
    result = _run(['tools/train.py', 'configs/ebt_ssv2_nextframe.py', '--work-dir',
                   str(tmp_path / 'work'), '--cfg-options',
                   f'train_dataloader.dataset.data_root={data}',
                   f'val_dataloader.dataset.data_root={data}'], core_env)
    assert result.returncode == 2, (result.stdout[-3000:], result.stderr[-3000:])
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == ('error: FrozenVAEEncoder (the SD-VAE latents of the video configs) needs '
                    'diffusers, which is not installed: pip install -e '
                    + shlex.quote(ROOT + '[video]'))
