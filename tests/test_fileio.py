"""ebtvision.fileio: weights-only loading from every checkpoint source, atomic writes, and
the process-wide install that routes MMEngine through them (never done by an import).

A real HTTP server on 127.0.0.1 serves a crafted checkpoint (real weights plus an object
whose unpickling would create a marker file) and a clean one; MMEngine's loader, the
training and test tools, the demo and the Python API must refuse the first and the marker
never appears.
"""
import ast
import functools
import http.server
import json
import os
import os.path as osp
import subprocess
import sys
import threading
from unittest import mock

import cv2
import numpy as np
import pytest
import torch
from mmengine.fileio.backends import backends, prefix_to_backends
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint

import ebtvision.engine
from ebtvision import fileio
from ebtvision.apis import ModelLoadError, init_model
from ebtvision.fileio import (AtomicLocalBackend, CheckpointLoadError, atomic_write,
                              history_buffers_to_plain, install_safe_checkpoint_io,
                              load_checkpoint_weights_only)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Packages below the engine: none of their modules may import ``ebtvision.engine``.
LOW_PACKAGES = ('models', 'datasets', 'evaluation', 'visualization')


class RunsCode:
    """Unpickling this would create ``marker`` (a shell command)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def resume_state():
    return dict(state_dict={'w': torch.ones(2)},
                message_hub=dict(log_scalars={'loss': HistoryBuffer([1.0, 2.0], [1, 1])}),
                meta=dict(seed=np.int64(3), arr=np.arange(3, dtype=np.uint32)))


def run_python(*args, **kwargs):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, 'PYTHONPATH': ROOT}, **kwargs)


# ------------------------------------------------------------------ install, and only then

MMENGINE_STATE = '''
import json, sys
{imports}
from mmengine.fileio.backends import backends, prefix_to_backends
from mmengine.runner.checkpoint import CheckpointLoader

def name(obj):
    return f'{{obj.__module__}}.{{obj.__qualname__}}'

print(json.dumps(dict(
    schemes={{prefix: name(loader) for prefix, loader in CheckpointLoader._schemes.items()}},
    backends={{key: name(value) for key, value in backends.items()}},
    prefixes={{key: name(value) for key, value in prefix_to_backends.items()}})))
'''


def mmengine_state(imports: str) -> dict:
    result = run_python('-c', MMENGINE_STATE.format(imports=imports))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_ebtvision_leaves_mmengine_as_it_is():
    alone = mmengine_state('import mmengine.fileio, mmengine.runner')
    with_ebtvision = mmengine_state(
        'import mmengine.fileio, mmengine.runner\n'
        'import ebtvision, ebtvision.fileio, ebtvision.engine, ebtvision.engine.checkpoint\n'
        'import ebtvision.models, ebtvision.datasets, ebtvision.evaluation\n'
        'import ebtvision.visualization, ebtvision.apis\n'
        'from ebtvision.utils import register_all_modules\n'
        'register_all_modules()')
    assert with_ebtvision == alone
    assert all(loader.startswith('mmengine.') for loader in alone['schemes'].values())
    assert alone['prefixes'][''] == 'mmengine.fileio.backends.local_backend.LocalBackend'


def test_install_makes_every_scheme_and_local_writes_ours():
    install_safe_checkpoint_io()
    install_safe_checkpoint_io()  # idempotent
    ours = set(fileio.SCHEME_LOADERS.values())
    assert ours == {fileio.load_from_local_file, fileio.load_from_url,
                    fileio.load_from_object_store, fileio.load_from_model_zoo,
                    fileio.load_from_refused_scheme}
    schemes = CheckpointLoader._schemes
    assert {'', 'http://', 'https://', 'torchvision://', 'open-mmlab://', 'pavi://'} <= set(
        schemes)
    assert {prefix: loader for prefix, loader in schemes.items() if loader not in ours} == {}
    assert len(schemes) == len(set(schemes))  # installing twice registered nothing twice
    assert backends['local'] is AtomicLocalBackend
    assert prefix_to_backends[''] is AtomicLocalBackend


def test_the_api_installs(tmp_path):
    # A fresh process: what init_model does, not what this test session's conftest did.
    result = run_python('-c', f'''
import sys
sys.path.insert(0, {osp.join(ROOT, 'tests')!r})
from conftest import write_denoiser
from mmengine.runner.checkpoint import CheckpointLoader
config, checkpoint = write_denoiser({str(tmp_path)!r}, 'dit')
before = CheckpointLoader._schemes['']
from ebtvision.apis import init_model
init_model(config, checkpoint)
print(before.__module__, CheckpointLoader._schemes[''].__module__)
''')
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ['mmengine.runner.checkpoint', 'ebtvision.fileio']


def test_the_engine_reexports_the_same_functions():
    for name in ('AtomicLocalBackend', 'CheckpointLoadError', 'atomic_write',
                 'history_buffers_to_plain', 'load_checkpoint_weights_only',
                 'plain_to_history_buffers'):
        assert getattr(ebtvision.engine, name) is getattr(fileio, name), name


# ----------------------------------------------------- layering: no engine below the engine


def engine_imports(path: str, module: str, is_package: bool):
    """``ebtvision.engine`` modules that ``path`` (module ``module``) imports, by name."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    package = module if is_package else module.rpartition('.')[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parent = package.rsplit('.', node.level - 1)[0] if node.level > 1 else package
                base = f'{parent}.{base}' if base else parent
            names = [base] + [f'{base}.{alias.name}' for alias in node.names]
        else:
            continue
        found += [f'{osp.relpath(path, ROOT)}:{node.lineno} {name}' for name in names
                  if name == 'ebtvision.engine' or name.startswith('ebtvision.engine.')]
    return found


def test_the_scan_sees_relative_and_absolute_imports(tmp_path):
    path = tmp_path / 'fake.py'
    path.write_text('import os\nfrom ..engine import atomic_write\nfrom ebtvision import engine\n'
                    'from ..registry import MODELS\nimport ebtvision.engine.checkpoint\n'
                    'from . import engine\n')
    found = [line.split(' ', 1)[1] for line in
             engine_imports(str(path), 'ebtvision.models.fake', is_package=False)]
    assert found == ['ebtvision.engine', 'ebtvision.engine.atomic_write', 'ebtvision.engine',
                     'ebtvision.engine.checkpoint']


def test_no_module_below_the_engine_imports_it():
    found = []
    for low in LOW_PACKAGES:
        for folder, _, files in os.walk(osp.join(ROOT, 'ebtvision', low)):
            for file in sorted(files):
                if not file.endswith('.py'):
                    continue
                path = osp.join(folder, file)
                parts = osp.relpath(path, ROOT)[:-len('.py')].split(os.sep)
                is_package = parts[-1] == '__init__'
                module = '.'.join(parts[:-1] if is_package else parts)
                found += engine_imports(path, module, is_package)
    assert found == []


def test_importing_the_low_packages_does_not_load_the_engine():
    result = run_python('-c', f'''
import importlib, pkgutil, sys
for low in {LOW_PACKAGES!r}:
    package = importlib.import_module('ebtvision.' + low)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):
        importlib.import_module(info.name)
print(sorted(name for name in sys.modules if name.startswith('ebtvision.engine')))
''')
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == '[]'


# ------------------------------------------------------------------------ weights-only loads


def test_mmengine_resume_state_loads_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(history_buffers_to_plain(resume_state()), path)
    loaded = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    torch.testing.assert_close(loaded['state_dict']['w'], torch.ones(2))
    buffer = loaded['message_hub']['log_scalars']['loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == 1.5


def test_raw_history_buffers_are_refused(tmp_path):
    # Their pickle calls getattr, which could reach anything: never allowed.
    path = tmp_path / 'raw.pth'
    torch.save(resume_state(), path)
    with pytest.raises(RuntimeError, match='weights-only'):
        load_checkpoint_weights_only(path)


def test_a_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': RunsCode(marker)}, path)
    with pytest.raises(RuntimeError, match='weights-only'):
        load_checkpoint_weights_only(path)
    with pytest.raises(RuntimeError, match='weights-only'):
        CheckpointLoader.load_checkpoint(str(path))
    assert not marker.exists()


def test_missing_and_truncated_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint_weights_only(tmp_path / 'nope.pth')
    path = tmp_path / 'cut.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(RuntimeError, match='unreadable'):
        load_checkpoint_weights_only(path)


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path):
    target = tmp_path / 'latest.pth'
    atomic_write(b'old complete checkpoint', target)
    with mock.patch('os.replace', side_effect=KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            atomic_write(b'new', target)
    assert target.read_bytes() == b'old complete checkpoint'
    assert os.listdir(tmp_path) == ['latest.pth']  # no temporary file left behind


def test_mmengine_save_checkpoint_goes_through_the_atomic_backend(tmp_path):
    target = tmp_path / 'iter_1.pth'
    with mock.patch('ebtvision.fileio.atomic_write') as write:
        save_checkpoint({'state_dict': {}}, str(target))
    assert write.called


# ------------------------------------------------------------------ remote checkpoint sources


@pytest.fixture
def served(tmp_path, monkeypatch):
    """``(base_url, folder, marker)``: a folder served over HTTP on 127.0.0.1."""
    folder = tmp_path / 'served'
    folder.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))  # the download cache
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}', folder, tmp_path / 'pwned'
    finally:
        server.shutdown()
        server.server_close()


def crafted_checkpoint(path, marker, state_dict):
    torch.save({'state_dict': state_dict, 'meta': {'note': RunsCode(marker)}}, path)


def test_url_checkpoints_load_weights_only(served):
    base, folder, marker = served
    torch.save({'state_dict': {'w': torch.arange(3.0)}}, folder / 'good.pth')
    crafted_checkpoint(folder / 'evil.pth', marker, {'w': torch.ones(3)})
    loaded = CheckpointLoader.load_checkpoint(f'{base}/good.pth', map_location='cpu')
    torch.testing.assert_close(loaded['state_dict']['w'], torch.arange(3.0))
    with pytest.raises(CheckpointLoadError, match='weights-only'):
        CheckpointLoader.load_checkpoint(f'{base}/evil.pth')
    with pytest.raises(CheckpointLoadError, match='cannot be downloaded'):
        CheckpointLoader.load_checkpoint(f'{base}/missing.pth')
    assert not marker.exists()


def test_unsafe_and_unknown_schemes_are_refused_by_name():
    with pytest.raises(CheckpointLoadError, match="'pavi://', which is not supported"):
        CheckpointLoader.load_checkpoint('pavi://some/model')
    with pytest.raises(CheckpointLoadError, match="'ftp://', which is not supported"):
        CheckpointLoader.load_checkpoint('ftp://example/model.pth')
    with pytest.raises(CheckpointLoadError, match='names no model that torchvision:// knows'):
        CheckpointLoader.load_checkpoint('torchvision://no_such_model')


@pytest.mark.slow
def test_tools_demo_and_api_refuse_a_crafted_url_checkpoint(served, tiny_config, tmp_path):
    # The tools and the demo run in fresh processes: this also checks that each installs.
    base, folder, marker = served
    config = tiny_config('ebt')
    model = init_model(config, None)
    crafted_checkpoint(folder / 'evil.pth', marker, model.state_dict())
    torch.save({'state_dict': model.state_dict()}, folder / 'good.pth')
    url = f'{base}/evil.pth'
    image = str(folder / 'image.png')
    cv2.imwrite(image, np.full((16, 16, 3), 128, np.uint8))
    runs = {
        'train --resume URL': run_python('tools/train.py', config, '--work-dir',
                                         str(tmp_path / 'w1'), '--resume', url),
        'train load_from=URL': run_python('tools/train.py', config, '--work-dir',
                                          str(tmp_path / 'w2'), '--cfg-options',
                                          f'load_from={url}'),
        'test CONFIG URL': run_python('tools/test.py', config, url, '--work-dir',
                                      str(tmp_path / 'w3')),
        'demo --checkpoint URL': run_python('demo/denoise_image.py', image,
                                            '--config', config, '--checkpoint', url),
    }
    for what, result in runs.items():
        assert result.returncode != 0, what
        assert 'weights-only' in result.stderr, (what, result.stderr[-2000:])
        assert 'Traceback' not in result.stderr, (what, result.stderr[-2000:])
    # Nothing was trained on top of the refused checkpoint.
    assert not any(name.endswith('.pth') for name in os.listdir(tmp_path / 'w2'))
    with pytest.raises(ModelLoadError, match='weights-only'):
        init_model(config, url)
    assert not marker.exists()
    # The same route loads a clean checkpoint: the refusal is about the pickle.
    loaded = init_model(config, f'{base}/good.pth')
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


# ------------------------------------------------------------------ foreign checkpoints

def test_foreign_checkpoint_keeps_tensors_and_runs_nothing(tmp_path):
    """A Lightning-style file: tensors load, a namespace becomes an inert record, and an
    object whose unpickling would run a command runs nothing."""
    import argparse
    from ebtvision.fileio import ForeignObject, load_foreign_checkpoint
    marker = tmp_path / 'MARKER'
    path = tmp_path / 'reference.ckpt'
    torch.save(dict(state_dict={'model.w': torch.arange(3.0)},
                    hyper_parameters=argparse.Namespace(embedding_dim=32),
                    callbacks=[RunsCode(marker)]), path)
    checkpoint = load_foreign_checkpoint(path)
    assert torch.equal(checkpoint['state_dict']['model.w'], torch.arange(3.0))
    hparams = checkpoint['hyper_parameters']
    assert isinstance(hparams, ForeignObject) and hparams['embedding_dim'] == 32
    assert 'argparse.Namespace' in repr(hparams)
    assert isinstance(checkpoint['callbacks'][0], ForeignObject)
    assert not marker.exists()


def test_foreign_checkpoint_errors_name_the_file(tmp_path):
    from ebtvision.fileio import CheckpointLoadError, load_foreign_checkpoint
    broken = tmp_path / 'broken.ckpt'
    broken.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointLoadError, match='broken.ckpt is unreadable'):
        load_foreign_checkpoint(broken)
    with pytest.raises(FileNotFoundError, match='missing.ckpt does not exist'):
        load_foreign_checkpoint(tmp_path / 'missing.ckpt')


def test_foreign_checkpoint_never_unpickles_outside_the_restricted_unpickler(tmp_path):
    """torch's legacy format starts with a bare pickle (the magic number) that torch reads
    with ``pickle_module.load``: a file whose first pickle runs a command is refused
    without running it, in the legacy form and inside a zip archive alike."""
    import pickle
    import zipfile
    from ebtvision.fileio import CheckpointLoadError, load_foreign_checkpoint
    marker = tmp_path / 'MARKER'
    legacy = tmp_path / 'legacy.ckpt'
    legacy.write_bytes(pickle.dumps(RunsCode(marker), protocol=2))
    with pytest.raises(CheckpointLoadError, match='not a zip-format torch checkpoint'):
        load_foreign_checkpoint(legacy)
    archive = tmp_path / 'archive.ckpt'
    with zipfile.ZipFile(archive, 'w') as zf:
        zf.writestr('archive/data.pkl', pickle.dumps(RunsCode(marker), protocol=2))
    with pytest.raises(CheckpointLoadError):
        load_foreign_checkpoint(archive)
    assert not marker.exists()
