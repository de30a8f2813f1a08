"""Weights-only checkpoint loading, atomic writes and resumable-checkpoint discovery."""
import os
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint

from ebtvision.engine import (atomic_write, find_resumable_checkpoint,
                              history_buffers_to_plain, load_checkpoint_weights_only)


class RunsCode:
    """Unpickling this would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def resume_state():
    return dict(state_dict={'w': torch.ones(2)},
                message_hub=dict(log_scalars={'loss': HistoryBuffer([1.0, 2.0], [1, 1])}),
                meta=dict(seed=np.int64(3), arr=np.arange(3, dtype=np.uint32)))


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
    with mock.patch('ebtvision.engine.checkpoint.atomic_write') as write:
        save_checkpoint({'state_dict': {}}, str(target))
    assert write.called


def test_find_resumable_skips_a_truncated_latest(tmp_path):
    torch.save({'state_dict': {'w': torch.ones(1)}}, tmp_path / 'iter_2.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}}, tmp_path / 'iter_4.pth')
    (tmp_path / 'iter_4.pth').write_bytes(b'\x80\x02truncated')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text('')
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    assert find_resumable_checkpoint(str(tmp_path / 'empty')) is None
