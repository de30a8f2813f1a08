"""DataSkipHook: skipped samples are counted per window, epoch and validation, in the log."""
import glob
import itertools
import logging
import os.path as osp
import re
from types import SimpleNamespace

import pytest
from mmengine.dataset import ConcatDataset
from mmengine.logging import MMLogger

from ebtvision.engine.hooks import DataSkipHook
from ebtvision.engine.hooks.data_skip_hook import excluded_files_of
from ebtvision.structures import DenoiseDataSample

_names = itertools.count()


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def logged():
    """Warnings logged through MMEngine's current logger during the test."""
    logger = MMLogger.get_instance(f'skip_hook_{next(_names)}', log_level='INFO')
    handler = _Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _batch(*skipped_lists):
    samples = []
    for skipped in skipped_lists:
        sample = DenoiseDataSample(metainfo=dict(img_path='good.png'))
        if skipped:
            sample.set_metainfo(dict(skipped_files=list(skipped)))
        samples.append(sample)
    return dict(inputs=[None] * len(samples), data_samples=samples)


def _runner(it=0, val_dataset=None):
    return SimpleNamespace(iter=it, epoch=0, train_loop=object(),
                           val_dataloader=SimpleNamespace(dataset=val_dataset))


def test_counts_per_window_and_for_training(logged):
    hook = DataSkipHook(interval=2)
    runner = _runner()
    hook.before_train_epoch(runner)
    batches = [_batch(['a.jpg'], [], ['b.jpg', 'a.jpg']), _batch([], []), _batch([], []),
               _batch([]), _batch(['a.jpg', 'c.jpg'])]
    for it, batch in enumerate(batches):
        runner.iter = it
        hook.after_train_iter(runner, it, batch)
        runner.iter = it + 1  # the loop increments after the hooks
    # Iterations 3-4 skipped nothing: no line for them.
    assert logged == [
        "Iterations 1-2: 3 sample draw(s) skipped as unusable, 2 file(s), not named before: "
        "['a.jpg', 'b.jpg'] (3 in training so far)"
    ]
    hook.after_train_epoch(runner)
    assert logged[-1] == ("Training (iterations 1-5): 5 sample draw(s) skipped as unusable, "
                          "3 file(s), not named before: ['c.jpg'] (5 in training so far)")
    assert hook.total == 5


def test_nothing_logged_without_skips(logged):
    hook = DataSkipHook(interval=1)
    runner = _runner(val_dataset=SimpleNamespace(skipped_files=[]))
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, _batch([], []))
    hook.after_train_iter(runner, 1, dict(inputs=[1]))  # no data samples at all
    hook.after_train_epoch(runner)
    hook.before_val_epoch(runner)
    hook.after_val_iter(runner, 0, _batch([]))
    hook.after_val_epoch(runner)
    assert logged == []


def test_validation_counts_and_build_time_exclusions_once(logged):
    first = SimpleNamespace(skipped_files=['/v/bad1.png'])
    second = SimpleNamespace(skipped_files=['/v/bad2.png'], skipped_videos={})
    wrapped = SimpleNamespace(datasets=[first, second])
    assert excluded_files_of(wrapped) == ['/v/bad1.png', '/v/bad2.png']
    hook = DataSkipHook()
    runner = _runner(val_dataset=wrapped)
    for _ in range(2):
        hook.before_val_epoch(runner)
        hook.after_val_iter(runner, 0, _batch(['/v/x.png']))
        hook.after_val_epoch(runner)
    assert logged[0].startswith('Validation: 1 sample draw(s) skipped as unusable, 1 file(s)')
    assert 'in training so far' not in logged[0]
    assert logged[1] == ("Validation set: 2 unusable file(s) were excluded when it was built: "
                         "['/v/bad1.png', '/v/bad2.png']")
    assert logged[2].startswith('Validation: 1 sample draw(s)')
    assert len(logged) == 3  # the exclusions are reported once


def test_excluded_files_of_real_wrappers(tmp_path):
    import cv2
    import numpy as np
    from ebtvision.datasets import ImageFolderDataset
    cv2.imwrite(str(tmp_path / 'good.png'), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / 'bad.png').write_bytes(b'')
    ds = ImageFolderDataset(data_root=str(tmp_path), test_mode=True)
    both = ConcatDataset([ds, ds])
    assert excluded_files_of(both) == [str(tmp_path / 'bad.png')] * 2


def test_end_to_end_with_a_dataloader_worker(tiny_config, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from ebtvision.utils import register_all_modules
    register_all_modules()
    config = tiny_config('ebt')
    train_root = tmp_path / 'data' / 'train'
    bad = [str(train_root / f'bad_{i}.jpg') for i in range(8)]  # next to 8 good ones
    for path in bad:
        with open(path, 'wb') as f:
            f.write(b'junk')
    (tmp_path / 'data' / 'val' / 'empty.png').write_bytes(b'')
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_dataloader.num_workers = 1  # skips happen in another process
    cfg.custom_hooks = [dict(type='DataSkipHook', interval=2)]
    Runner.from_cfg(cfg).train()

    log = open(glob.glob(osp.join(cfg.work_dir, '*', '*.log'))[0]).read()
    # Warned in the worker process once per file (not per draw); the lines reached the
    # work dir's log file.
    named = re.findall(r'Skipping unreadable image (\S+):', log)
    empty = repr(str(tmp_path / 'data' / 'val' / 'empty.png'))
    assert empty in named and set(named) - {empty} <= {repr(p) for p in bad}
    assert len(named) > 1 and len(named) == len(set(named))
    windows = [int(n) for n in re.findall(r'Iterations \d+-\d+: (\d+) sample draw', log)]
    total = re.findall(r'Training \(iterations 1-4\): (\d+) sample draw', log)
    assert windows and total and sum(windows) == int(total[0]) > 0
    excluded = re.findall(r'Validation set: 1 unusable file\(s\) .*empty\.png', log)
    assert len(excluded) == 1  # two validations, reported once
