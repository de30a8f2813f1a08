"""Distributed data-parallel training: 2 CPU processes with the gloo backend."""
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch

from ebtvision.engine import load_checkpoint_weights_only

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize('kind', ['ebt', 'dit'])
def test_ddp_two_processes_gloo(tiny_config, tmp_path, kind):
    config = tiny_config(kind)
    work = str(tmp_path / 'work')
    env = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         '--master_addr=127.0.0.1', f'--master_port={free_port()}', 'tools/train.py', config,
         '--launcher', 'pytorch', '--work-dir', work],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # MMEngine's name for the world size
    state = load_checkpoint_weights_only(osp.join(work, 'iter_4.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values())
    # Distributed validation gathered both ranks' images: its final metrics equal a
    # single-process test of the final checkpoint (evaluation noise is per sample).
    last_val = [line for line in log.splitlines() if 'Iter(val)' in line][-1]
    distributed = float(re.search(r'denoise/psnr@0.2: ([\d.]+)', last_val).group(1))
    out = tmp_path / 'metrics.json'
    subprocess.run([sys.executable, 'tools/test.py', config, osp.join(work, 'iter_4.pth'),
                    '--work-dir', str(tmp_path / 'test'), '--out', str(out), '--no-vis'],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    single = json.loads(out.read_text())['denoise/psnr@0.2']
    assert distributed == pytest.approx(single, abs=2e-4)
