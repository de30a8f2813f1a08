"""Resumable-checkpoint discovery and clean-up (the loading and writing it relies on:
tests/test_fileio.py)."""
import os
from unittest import mock

import pytest
import torch

from ebtvision.engine import (atomic_write, remove_partial_writes, search_resumable_checkpoint,
                              set_aside)


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
