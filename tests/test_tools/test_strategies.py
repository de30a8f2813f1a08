"""runner_type='FlexibleRunner' with the DDP and FSDP strategies of configs/_base_/strategies/.

Two CPU processes (gloo) train the tiny EBT, whose loss differentiates the energy inside the
forward pass and then backpropagates through that gradient. At equal global batch (2 x 2
images against 1 x 4) DDP and FSDP end with one process's weights; FSDP resumes exactly
(optimizer states and the fp16 loss scaler included) and writes ordinary checkpoints that
tools/test.py reads.
"""
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from conftest import TINY_CONFIG, write_image_folder
from mmengine.config import Config

from ebtvision.engine import check_fsdp_config, load_checkpoint_weights_only
from ebtvision.models import DiTDenoiser, EBTDenoiser
from ebtvision.utils import build_runner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STRATEGIES = osp.join(ROOT, 'configs', '_base_', 'strategies')

# Training noise drawn per image from its sample_idx: every image gets the same noise
# whichever process and batch slot it lands in (the shipped models draw it from each
# rank's own stream), so runs with different numbers of processes can be compared.
SEEDED_MODEL = '''
import torch
from ebtvision.models import EBTDenoiser
from ebtvision.registry import MODELS


@MODELS.register_module()
class SampleSeededEBTDenoiser(EBTDenoiser):

    def loss(self, inputs, data_samples=None):
        self._noise = torch.stack([
            torch.randn(inputs.shape[1:], generator=torch.Generator().manual_seed(
                int(sample.sample_idx))) for sample in data_samples]).to(inputs)
        try:
            return super().loss(inputs, data_samples)
        finally:
            self._noise = None

    def add_noise(self, x0, t, noise=None):
        if noise is None and getattr(self, '_noise', None) is not None:
            noise = self._noise
        return super().add_noise(x0, t, noise)
'''
SEEDED_CONFIG = '''
_base_ = ['tiny_ebt.py']
custom_imports = dict(imports=['sample_seeded_ebt'], allow_failed_imports=False)
# No random step sizes: the thinking loop is deterministic too.
model = dict(type='SampleSeededEBTDenoiser', thinker=dict(random_step_size_scale=1.0))
# The gradient norm is about 0.004: clipping acts, by the whole model's norm on every rank.
optim_wrapper = dict(clip_grad=dict(max_norm=0.002))
# The visualisation hooks call the wrapped module itself (see full_parameters).
custom_hooks = []
'''
MAX_NORM = 0.002


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Workspace:
    """The configs and data of this module's runs; each run is made once."""

    def __init__(self, root: str) -> None:
        self.root = root
        train_root = write_image_folder(osp.join(root, 'data', 'train'), 8, seed=1)
        val_root = write_image_folder(osp.join(root, 'data', 'val'), 4, seed=2)
        self.write('tiny_ebt.py', TINY_CONFIG.format(kind='ebt', train_root=train_root,
                                                     val_root=val_root))
        self.write('sample_seeded_ebt.py', SEEDED_MODEL)
        self.config = self.write('seeded.py', SEEDED_CONFIG)
        for name in ('ddp', 'fsdp'):  # used as a user would: _base_ the fragment
            self.write(f'seeded_{name}.py', f"_base_ = ['seeded.py', "
                       f"{osp.join(STRATEGIES, name + '.py')!r}]\n")
        self.env = {**os.environ, 'PYTHONPATH': os.pathsep.join([ROOT, root]),
                    'OMP_NUM_THREADS': '1'}
        self.logs = {}

    def write(self, name: str, text: str) -> str:
        path = osp.join(self.root, name)
        with open(path, 'w') as file:
            file.write(text)
        return path

    def work_dir(self, name: str) -> str:
        return osp.join(self.root, 'work', name)

    def run(self, name: str, tool_args, processes: int = 1) -> str:
        """Run ``tools/train.py`` (or another tool) once; returns its log."""
        if name in self.logs:
            return self.logs[name]
        launcher = [] if processes == 1 else [
            '-m', 'torch.distributed.run', f'--nproc_per_node={processes}',
            '--master_addr=127.0.0.1', f'--master_port={free_port()}']
        result = subprocess.run(
            [sys.executable, *launcher, *tool_args], cwd=ROOT, env=self.env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        log = result.stdout + result.stderr
        assert result.returncode == 0, f'{name}:\n{log[-4000:]}'
        self.logs[name] = log
        return log

    def train(self, name: str, config: str, processes: int, *options) -> str:
        launch = ['--launcher', 'pytorch'] if processes > 1 else []
        batch = ['--cfg-options', f'train_dataloader.batch_size={4 // processes}']
        return self.run(name, ['tools/train.py', osp.join(self.root, config), *launch,
                               '--work-dir', self.work_dir(name), *options, *batch],
                        processes)

    def scalars(self, name: str):
        """Rank 0's logged training scalars, one dict per iteration."""
        path, = glob.glob(osp.join(self.work_dir(name), '*', 'vis_data', 'scalars.json'))
        with open(path) as file:
            return [row for row in map(json.loads, file) if 'loss' in row]

    def weights(self, name: str, iteration: int = 4):
        path = osp.join(self.work_dir(name), f'iter_{iteration}.pth')
        assert osp.isfile(path), f'{path} is not one checkpoint file'
        return load_checkpoint_weights_only(path)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return Workspace(str(tmp_path_factory.mktemp('strategies')))


def last_val_psnr(log: str) -> float:
    last = [line for line in log.splitlines() if 'Iter(val)' in line and 'psnr@0.2' in line][-1]
    return float(re.search(r'denoise/psnr@0.2: ([\d.]+)', last).group(1))


def assert_same_weights(reference: dict, other: dict, rtol: float) -> float:
    """Every tensor within ``rtol`` (relative, in norm); returns the largest difference."""
    assert set(other) == set(reference)  # the module's keys, no wrapper prefix
    worst = 0.0
    for key, value in reference.items():
        if value.is_floating_point():
            difference = float((other[key] - value).norm() / value.norm().clamp_min(1e-30))
            assert difference <= rtol, f'{key}: relative difference {difference:.2e}'
            worst = max(worst, difference)
    return worst


@pytest.mark.slow
def test_ddp_and_fsdp_train_an_ebt_like_one_process(workspace):
    # Without a launcher the FSDP config trains as one process (SingleDeviceStrategy).
    single = workspace.train('single', 'seeded_fsdp.py', 1)
    assert 'this run is one process: SingleDeviceStrategy' in single
    logs = {kind: workspace.train(kind, f'seeded_{kind}.py', 2) for kind in ('ddp', 'fsdp')}
    for log in logs.values():
        assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'gradients averaged: thinker.alpha' in logs['fsdp']

    reference = workspace.weights('single')['state_dict']
    # Training moved the weights (from iteration 2 to 4), so the comparison means something.
    start = workspace.weights('single', 2)['state_dict']
    assert any(not torch.equal(start[key], value) for key, value in reference.items())
    for kind in ('ddp', 'fsdp'):
        # Measured: 2.6e-7 (DDP) and 2.9e-7 (FSDP).
        assert_same_weights(reference, workspace.weights(kind)['state_dict'], rtol=1e-5)

    # The gradient norm of the global batch: equal, and above max_norm, so every step
    # was clipped by it (FSDP's by the whole model's norm, not each process's shard).
    norms = {name: [row['grad_norm'] for row in workspace.scalars(name)]
             for name in ('single', 'ddp', 'fsdp')}
    assert len(norms['single']) == 4 and min(norms['single']) > MAX_NORM
    for kind in ('ddp', 'fsdp'):
        assert norms[kind] == pytest.approx(norms['single'], rel=1e-5)
    # Rank 0's loss (its 2 images) is logged: DDP's and FSDP's are the same.
    losses = {kind: [row['loss'] for row in workspace.scalars(kind)] for kind in logs}
    assert losses['fsdp'] == pytest.approx(losses['ddp'], rel=1e-6)
    # Distributed validation of the final weights: one process's metrics.
    for kind in ('ddp', 'fsdp'):
        assert last_val_psnr(logs[kind]) == pytest.approx(last_val_psnr(single), abs=2e-4)


@pytest.mark.slow
def test_fsdp_resumes_exactly_with_fp16_amp_and_its_checkpoint_tests(workspace):
    amp = ['--amp', '--amp-dtype', 'float16']
    log = workspace.train('fsdp_amp', 'seeded_fsdp.py', 2, *amp)
    checkpoint = workspace.weights('fsdp_amp', 2)
    assert checkpoint['meta']['iter'] == 2  # also after the re-save that validation makes
    optimizer = checkpoint['optimizer']
    assert optimizer['loss_scaler']['scale'] > 0  # the sharded GradScaler's state
    # Full optimizer states by parameter name, each its own (FSDP's CPU gather aliased them).
    name = 'backbone.patch_embed.proj.weight'
    state = optimizer['state'][name]
    assert state['exp_avg'].shape == checkpoint['state_dict'][name].shape
    assert not torch.equal(state['exp_avg'], state['exp_avg_sq'])

    # A bare --resume in another work dir holding the iteration-2 checkpoint.
    resumed_dir = workspace.work_dir('fsdp_amp_resumed')
    os.makedirs(resumed_dir)
    shutil.copy(osp.join(workspace.work_dir('fsdp_amp'), 'iter_2.pth'), resumed_dir)
    with open(osp.join(resumed_dir, 'last_checkpoint'), 'w') as file:
        file.write(osp.join(resumed_dir, 'iter_2.pth'))
    resumed = workspace.train('fsdp_amp_resumed', 'seeded_fsdp.py', 2, *amp, '--resume')
    assert 'resumed epoch: 0, iter: 2' in resumed
    assert [row['iter'] for row in workspace.scalars('fsdp_amp_resumed')] == [3, 4]
    uninterrupted = workspace.weights('fsdp_amp')['state_dict']
    for key, value in workspace.weights('fsdp_amp_resumed')['state_dict'].items():
        torch.testing.assert_close(value, uninterrupted[key], rtol=1e-6, atol=1e-9)

    # The FSDP checkpoint is an ordinary one: a single-process test gives the metrics
    # of the distributed validation.
    out = osp.join(workspace.root, 'metrics.json')
    workspace.run('test', ['tools/test.py', workspace.config,
                           osp.join(workspace.work_dir('fsdp_amp'), 'iter_4.pth'),
                           '--work-dir', workspace.work_dir('test'), '--out', out, '--no-vis'])
    with open(out) as file:
        assert json.load(file)['denoise/psnr@0.2'] == pytest.approx(last_val_psnr(log),
                                                                    abs=2e-4)


FLEXIBLE = dict(runner_type='FlexibleRunner')
BLOCK_UNITS = dict(auto_wrap_policy=dict(type='block_wrap_policy'))


@pytest.mark.parametrize('options, message', [
    (dict(strategy=dict(type='FSDPStrategy')), "is used by runner_type='FlexibleRunner' only"),
    (dict(FLEXIBLE, model_wrapper_cfg=dict(type='MMDistributedDataParallel')),
     'FlexibleRunner ignores model_wrapper_cfg'),
    (dict(FLEXIBLE, strategy=dict(type='FSDPStrategy', state_dict_cfg='local')),
     "saves every process's shard separately"),
    (dict(FLEXIBLE, strategy=dict(type='FSDPStrategy', model_wrapper=BLOCK_UNITS)),
     'EBTDenoiser is an EBT, which FSDP cannot split into several units'),
    (dict(FLEXIBLE, strategy=dict(type='DeepSpeedStrategy')),
     'strategy DeepSpeedStrategy needs the deepspeed package, which is not installed'),
])
@pytest.mark.filterwarnings('ignore')
def test_strategy_mistakes_end_in_one_line(capsys, options, message):
    if 'deepspeed' in message and importlib.util.find_spec('deepspeed'):
        pytest.skip('deepspeed is installed here')
    cfg = Config(dict(model=dict(type='EBTDenoiser'), launcher='pytorch', **options))
    with pytest.raises(SystemExit) as exit_info:
        build_runner(cfg, 'cfg.py')
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: cfg.py: ') and message in err and '\n' not in err


def test_only_ebts_must_stay_one_fsdp_unit():
    blocks = dict(type='FSDPStrategy', model_wrapper=BLOCK_UNITS)
    check_fsdp_config(blocks, DiTDenoiser)  # the baselines may gather one block at a time
    check_fsdp_config(dict(type='FSDPStrategy'), EBTDenoiser)
    with pytest.raises(ValueError, match='cannot split'):
        check_fsdp_config(blocks, EBTDenoiser)
