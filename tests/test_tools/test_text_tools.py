"""tools/train.py and tools/test.py on tiny language models over generated Dyck data."""
import json
import os.path as osp

import pytest
from conftest import TINY_TEXT_MODEL, run_tool

pytestmark = pytest.mark.slow

TEXT_CONFIG = TINY_TEXT_MODEL + """_dyck = dict(type='DyckDataset', num_types=2, seq_len=24)
train_dataloader = dict(batch_size=4, num_workers=0,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(num_samples=32, length=(3, 8), max_depth=3, seed=0, **_dyck))
val_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(num_samples=6, length=(3, 8), max_depth=3, seed=1, **_dyck))
test_dataloader = dict(batch_size=4, num_workers=0,
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dict(num_samples=6, length=(9, 11), max_depth=6, seed=2, **_dyck))
val_evaluator = [dict(type='LanguageModelMetric'), dict(type='ThinkingMetric')]
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2, save_last=True,
                    save_best='text/perplexity', rule='less'),
    resume_state=dict(type='ResumeStateHook'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


@pytest.mark.parametrize('kind', ['ebt', 'tpp'])
def test_train_then_test_a_language_model(tmp_path, kind):
    config = tmp_path / f'text_{kind}.py'
    config.write_text(TEXT_CONFIG.format(kind=kind))
    work = str(tmp_path / 'work')
    run_tool('tools/train.py', str(config), '--work-dir', work)
    out = str(tmp_path / 'metrics.json')
    options = ['--thinking-steps', '3', '--num-candidates', '2'] if kind == 'ebt' else []
    run_tool('tools/test.py', str(config), osp.join(work, 'iter_4.pth'), '--work-dir',
             str(tmp_path / 'test'), '--out', out, *options)
    metrics = json.load(open(out))
    for key in ('perplexity', 'accuracy', 'cross_entropy', 'completion_accuracy'):
        assert f'text/{key}' in metrics
    assert 0 <= metrics['text/completion_accuracy'] <= 1 and metrics['text/perplexity'] > 1
