"""The launcher scripts: tools/dist_test.sh evaluates with 2 gloo processes on CPU, and the
Slurm scripts hand train.py / test.py exactly what their usage line says (a fake ``srun``
on PATH records the command instead of submitting it)."""
import importlib.util
import json
import os
import os.path as osp
import socket
import subprocess
import sys
from unittest import mock

import pytest
import torch
from conftest import run_tool
from mmengine.config import Config

from ebtvision.engine import load_checkpoint_weights_only

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SLURM_SCRIPTS = {'slurm_train.sh': 'train.py', 'slurm_test.sh': 'test.py'}
# What the usage lines' placeholders stand for in these tests.
PLACEHOLDERS = {'PARTITION': 'gpu', 'JOB_NAME': 'ebt s1', 'CONFIG': 'configs/ebt_coco_denoise.py',
                'CHECKPOINT': 'work dirs/iter_8.pth'}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_script(script, *args, env=None):
    return subprocess.run(['bash', osp.join('tools', script), *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=600)


def tool_parser(name):
    """``parse_args`` of tools/NAME (imported from its file; tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f'_tool_{name[:-3]}',
                                                  osp.join(ROOT, 'tools', name))
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ):  # the tools set OpenMP variables when imported
        spec.loader.exec_module(module)
    return module.parse_args


@pytest.fixture
def fake_srun(tmp_path):
    """Environment with an ``srun`` that writes its arguments, one a line, to a file."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text('#!/usr/bin/env bash\nprintf \'%s\\n\' "$@" > "$SRUN_RECORD"\n')
    srun.chmod(0o755)
    record = tmp_path / 'srun_args'
    return dict(PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', SRUN_RECORD=str(record)), record


@pytest.mark.parametrize('script', SLURM_SCRIPTS)
def test_slurm_script_passes_what_its_usage_line_says(script, fake_srun):
    env, record = fake_srun
    usage = run_script(script)
    assert usage.returncode == 2 and not record.exists()
    # e.g. "usage: GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]"
    words = usage.stderr.strip().split()
    assert words[0] == 'usage:' and words[1].startswith('GPUS=') and words[2] == 'bash'
    assert words[3] == f'tools/{script}'
    tool = SLURM_SCRIPTS[script]
    assert ' '.join(words[-2:]) == f'[{tool} options]'
    positional = words[4:-2]
    assert positional == ['PARTITION', 'JOB_NAME', 'CONFIG'] + (
        ['CHECKPOINT'] if tool == 'test.py' else [])
    gpus = words[1].split('=')[1]

    options = ['--work-dir', 'work dirs/run 1', '--cfg-options', 'train_cfg.max_iters=10']
    result = run_script(script, *[PLACEHOLDERS[name] for name in positional], *options,
                        env=dict(env, GPUS=gpus))
    assert result.returncode == 0, result.stderr
    srun_args = record.read_text().splitlines()
    assert srun_args[:2] == ['-p', 'gpu'] and '--job-name=ebt s1' in srun_args
    assert f'--ntasks={gpus}' in srun_args and '--ntasks-per-node=8' in srun_args
    start = srun_args.index(osp.join(ROOT, 'tools', tool)) + 1
    tool_args = srun_args[start:]
    expected = [PLACEHOLDERS[name] for name in positional[2:]] + ['--launcher', 'slurm']
    assert tool_args == expected + options
    args = tool_parser(tool)(tool_args)  # the tool accepts them as they are
    assert args.launcher == 'slurm' and args.work_dir == 'work dirs/run 1'

    # Fewer GPUs than a node holds: one node with that many tasks.
    run_script(script, *[PLACEHOLDERS[name] for name in positional], env=dict(env, GPUS='2'))
    assert {'--ntasks=2', '--ntasks-per-node=2', '--gres=gpu:2'} <= set(
        record.read_text().splitlines())


@pytest.mark.parametrize('script', SLURM_SCRIPTS)
def test_slurm_script_refuses_a_positional_gpu_count(script, fake_srun):
    env, record = fake_srun
    positional = ['gpu', 'job', 'configs/ebt_coco_denoise.py']
    if script == 'slurm_test.sh':
        positional.append('iter_8.pth')
    result = run_script(script, *positional, '16', '--work-dir', 'w', env=env)
    assert result.returncode == 2 and not record.exists()
    assert result.stderr.count('\n') == 1 and 'GPUS=16 bash' in result.stderr


@pytest.mark.parametrize('script, args', [('dist_train.sh', ['c.py', 'two']),
                                          ('dist_test.sh', ['c.py', 'w.pth', '0'])])
def test_dist_script_refuses_a_wrong_process_count(script, args):
    result = run_script(script, *args)
    assert result.returncode == 2 and result.stderr.startswith('error: GPUS')
    assert result.stderr.count('\n') == 1
    usage = run_script(script)
    assert usage.returncode == 2 and usage.stderr.startswith(f'usage: bash tools/{script} ')


@pytest.mark.slow
def test_dist_test_two_processes_gloo_equals_one_process(tiny_config, tmp_path):
    from ebtvision.registry import MODELS
    from ebtvision.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    config = tiny_config('ebt')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    with torch.no_grad():  # adaLN-Zero starts with a flat energy: give it some slope
        for param in model.parameters():
            param.add_(0.2 * torch.randn_like(param))
    checkpoint = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 1}}, checkpoint)

    # torchrun from this interpreter's environment
    env = {'PATH': f'{osp.dirname(sys.executable)}{os.pathsep}{os.environ["PATH"]}',
           'OMP_NUM_THREADS': '1', 'PORT': str(free_port())}
    distributed_out, single_out = tmp_path / 'dist.json', tmp_path / 'single.json'
    result = run_script('dist_test.sh', config, checkpoint, '2', '--work-dir',
                        str(tmp_path / 'dist'), '--out', str(distributed_out), '--no-vis',
                        env=env)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log and 'GPU number: 2' in log
    single = subprocess.run(
        [sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
         str(tmp_path / 'single'), '--out', str(single_out), '--no-vis'], cwd=ROOT,
        env={**os.environ, **env, 'PYTHONPATH': ROOT}, capture_output=True, text=True,
        timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    distributed, expected = json.loads(distributed_out.read_text()), json.loads(
        single_out.read_text())
    # Both ranks' images were gathered: the metrics are those of the whole test set.
    assert distributed.keys() == expected.keys() and 'denoise/psnr@0.2' in distributed
    for key, value in expected.items():
        if '_batch@' in key:  # per-batch PSNR: each rank's batches hold 2 images, not 4
            continue
        assert distributed[key] == pytest.approx(value, rel=1e-4, abs=2e-4), key


# ---------------------------------------------------------------------------------------
# tools/train.py --auto-scale-lr
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize('counts', [1, 2])
def test_auto_scale_lr_scales_by_the_global_batch(tiny_config, tmp_path, counts):
    # The tiny config: 1 process, batch_size 4, lr 1e-3 (thinker.alpha: lr_mult 10).
    config, work = tiny_config('ebt'), str(tmp_path / 'work')
    result = run_tool('tools/train.py', config, '--work-dir', work, '--auto-scale-lr',
                      '--cfg-options', 'auto_scale_lr.base_batch_size=16',
                      f'optim_wrapper.accumulative_counts={counts}',
                      f'train_cfg.max_iters={counts}', 'train_cfg.val_interval=10')
    ratio = 4 * counts / 16  # global batch (accumulated micro-batches included) / base
    assert f'Scaling the original LR by {ratio}' in result.stdout + result.stderr
    optimizer = load_checkpoint_weights_only(osp.join(work, f'iter_{counts}.pth'))['optimizer']
    # initial_lr: the rate the schedulers start from, set after the scaling
    assert {round(group['initial_lr'], 12) for group in optimizer['param_groups']} == {
        round(1e-3 * ratio, 12), round(1e-2 * ratio, 12)}


def test_auto_scale_lr_needs_a_base_batch_size(tiny_config):
    result = run_tool('tools/train.py', tiny_config('ebt'), '--auto-scale-lr', check=False)
    assert result.returncode == 2 and result.stderr.count('\n') == 1
    assert 'auto_scale_lr = dict(base_batch_size=N)' in result.stderr
