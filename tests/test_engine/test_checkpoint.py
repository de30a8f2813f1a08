"""Weights-only checkpoint loading, atomic writes and resumable-checkpoint discovery."""
import os
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint

from ebtvision.engine import (CheckpointLoadError, atomic_write, history_buffers_to_plain,
                              load_checkpoint_weights_only, remove_partial_writes,
                              search_resumable_checkpoint, set_aside)
from ebtvision.engine import checkpoint as safe_checkpoint


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


def test_resume_search_skips_a_truncated_latest_and_says_why(tmp_path):
    torch.save({'state_dict': {'w': torch.ones(1)}}, tmp_path / 'iter_2.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}}, tmp_path / 'iter_4.pth')
    (tmp_path / 'iter_4.pth').write_bytes(b'\x80\x02truncated')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    search = search_resumable_checkpoint(str(tmp_path))
    assert search.checkpoint == str(tmp_path / 'iter_2.pth')
    assert [(path, 'unreadable' in reason) for path, reason in search.skipped] == [
        (str(tmp_path / 'iter_4.pth'), True)]  # named once, though pointed to twice
    assert search.present == [str(tmp_path / 'iter_4.pth'), str(tmp_path / 'iter_2.pth')]
    (tmp_path / 'last_checkpoint').write_text('')
    search = search_resumable_checkpoint(str(tmp_path))
    assert search.checkpoint == str(tmp_path / 'iter_2.pth')
    assert 'empty' in search.skipped[0][1] and search.skipped[1][0].endswith('iter_4.pth')
    empty = search_resumable_checkpoint(str(tmp_path / 'empty'))
    assert empty.checkpoint is None and empty.present == [] and empty.skipped == []


def test_resume_search_with_no_loadable_checkpoint(tmp_path):
    (tmp_path / 'iter_5.pth').write_bytes(b'')
    (tmp_path / 'iter_3.pth').write_bytes(b'\x80\x02truncated')
    torch.save({'weights': torch.ones(1)}, tmp_path / 'iter_1.pth')  # no state_dict
    search = search_resumable_checkpoint(str(tmp_path))
    assert search.checkpoint is None
    assert [osp_name(path) for path, _ in search.skipped] == ['iter_5.pth', 'iter_3.pth',
                                                               'iter_1.pth']
    reasons = [reason for _, reason in search.skipped]
    assert reasons[0] == 'is empty (0 bytes)' and reasons[1].startswith('is unreadable')
    assert 'state_dict' in reasons[2]
    assert not any(str(tmp_path) in reason for reason in reasons)  # listed beside the name


def osp_name(path):
    return os.path.basename(path)


def test_set_aside_never_overwrites(tmp_path):
    for content in (b'first', b'second'):
        (tmp_path / 'iter_4.pth').write_bytes(content)
        set_aside(str(tmp_path / 'iter_4.pth'))
    assert (tmp_path / 'iter_4.pth.unreadable').read_bytes() == b'first'
    assert (tmp_path / 'iter_4.pth.unreadable.1').read_bytes() == b'second'
    assert not (tmp_path / 'iter_4.pth').exists()


def test_partial_writes_are_removed_and_nothing_else(tmp_path):
    target = tmp_path / 'iter_1.pth'
    with mock.patch('os.fsync', side_effect=KeyboardInterrupt):  # killed mid-write...
        with mock.patch('os.remove'):  # ...before it could clean up
            with pytest.raises(KeyboardInterrupt):
                atomic_write(b'half', target)
    (tmp_path / 'notes.part').write_text('a user file')
    (tmp_path / '.tmp-staging.part').mkdir()
    leftovers = sorted(p.name for p in tmp_path.glob('.tmp-*.part'))
    assert len(leftovers) == 2
    removed = remove_partial_writes(str(tmp_path))
    assert sorted(os.path.basename(p) for p in removed) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.part']
