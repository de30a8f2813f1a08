"""Distributed training: every rank draws its own noise, and checkpoints keep all ranks' RNG."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ebtvision.engine import load_checkpoint_weights_only

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.slow


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _train(config, work, *options):
    env = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         '--master_addr=127.0.0.1', f'--master_port={_free_port()}', 'tools/train.py', config,
         '--launcher', 'pytorch', '--work-dir', work, *options],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return log


@pytest.mark.parametrize('kind', ['ebt', 'dit'])
def test_two_gloo_ranks_draw_different_noise_and_resume_exactly(tiny_config, tmp_path, kind):
    config = tiny_config(kind)
    whole, split = str(tmp_path / 'whole'), str(tmp_path / 'split')
    _train(config, whole)
    checkpoint = load_checkpoint_weights_only(osp.join(whole, 'iter_2.pth'))
    states = checkpoint['rng_states']
    assert len(states) == 2
    assert torch.equal(states[0]['torch'], checkpoint['rng_state']['torch'])
    # the ranks' streams differ (and so did every noise draw from them)
    assert not torch.equal(states[0]['torch'], states[1]['torch'])
    assert states[0]['python'] != states[1]['python']
    # interrupted after iteration 2 and resumed: the same final weights
    _train(config, split, '--cfg-options', 'train_cfg.max_iters=2')
    log = _train(config, split, '--resume')
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'not exact' not in log
    expected = load_checkpoint_weights_only(osp.join(whole, 'iter_4.pth'))['state_dict']
    actual = load_checkpoint_weights_only(osp.join(split, 'iter_4.pth'))['state_dict']
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)
