"""AtomicCheckpointHook: a crash-safe last_checkpoint and no stale partial writes."""
from unittest import mock

import pytest


def _killed_while_writing(path, mode='r', *args, **kwargs):
    """``open`` that truncates a file opened for writing, then dies (a kill mid-write)."""
    handle = open(path, mode, *args, **kwargs)
    if 'w' in mode:
        handle.close()
        raise KeyboardInterrupt
    return handle


def _runner_for_checkpoint_hook(work_dir):
    runner = mock.MagicMock()
    runner.work_dir = str(work_dir)
    return runner


@pytest.mark.parametrize('hook_type', ['CheckpointHook', 'AtomicCheckpointHook'])
def test_a_kill_while_writing_last_checkpoint_keeps_the_old_pointer(tmp_path, hook_type):
    from mmengine.hooks import CheckpointHook
    from mmengine.hooks import checkpoint_hook as mmengine_checkpoint_hook

    from ebtvision.engine.hooks import AtomicCheckpointHook
    hook = dict(CheckpointHook=CheckpointHook, AtomicCheckpointHook=AtomicCheckpointHook)[
        hook_type](interval=1, by_epoch=False)
    runner = _runner_for_checkpoint_hook(tmp_path)
    hook.before_train(runner)
    hook._save_checkpoint_with_step(runner, 1, {})
    pointer = tmp_path / 'last_checkpoint'
    assert pointer.read_text().endswith('iter_1.pth')
    with mock.patch.object(mmengine_checkpoint_hook, 'open', _killed_while_writing,
                           create=True):
        with pytest.raises(KeyboardInterrupt):
            hook._save_checkpoint_with_step(runner, 2, {})
    if hook_type == 'CheckpointHook':  # MMEngine's own: the pointer is lost
        assert pointer.read_text() == ''
    else:
        assert pointer.read_text().endswith('iter_1.pth')
        assert sorted(p.name for p in tmp_path.iterdir()) == ['last_checkpoint']
        hook._save_checkpoint_with_step(runner, 3, {})
        assert pointer.read_text().endswith('iter_3.pth')


def test_atomic_checkpoint_hook_removes_interrupted_writes_before_training(tmp_path):
    from ebtvision.engine.hooks import AtomicCheckpointHook
    (tmp_path / '.tmp-k1l2.part').write_bytes(b'half a checkpoint')
    (tmp_path / 'iter_2.pth').write_bytes(b'kept')
    hook = AtomicCheckpointHook(interval=1, by_epoch=False)
    hook.before_train(_runner_for_checkpoint_hook(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_2.pth']
