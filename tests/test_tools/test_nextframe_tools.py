"""tools/train.py and tools/test.py on next-frame prediction, with generated videos."""
import json
import os
import os.path as osp

import pytest
import torch
from conftest import write_video
from test_train_test_tools import run_tool, weights

pytestmark = pytest.mark.slow

VIDEO_CONFIG = """
default_scope = 'ebtvision'
kind = '{kind}'
_arch = dict(depth=1, num_heads=2, embed_dims=16)
_encoder = dict(type='PixelPatchEncoder', patch_size=4)
if kind == 'ebt':
    model = dict(type='EBTNextFrame', encoder=_encoder, frame_size=16,
                 backbone=dict(type='CausalEBT', arch=_arch, max_steps=2),
                 head=dict(type='NextFrameHead'),
                 thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=1.0,
                              random_step_size_scale=2.0, random_step_size_dims=2),
                 test_cfg=dict(decode=True))
    _paramwise = dict(custom_keys={{'thinker.alpha': dict(lr_mult=3.0, decay_mult=0.0)}})
else:
    model = dict(type='TransformerPPNextFrame', encoder=_encoder, frame_size=16,
                 backbone=dict(type='CausalTransformer', arch=_arch),
                 head=dict(type='NextFrameHead'), test_cfg=dict(decode=True))
    _paramwise = dict()
_pipeline = [dict(type='LoadVideoClip'), dict(type='VideoResize', short_side=16),
             dict(type='VideoCenterCrop', size=16), dict(type='PackVideoInputs')]
_clip = dict(data_root='{root}', clip_len=5, time_between_frames=0.2, pipeline=_pipeline)
train_dataloader = dict(batch_size=2, num_workers=0,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(type='VideoFolderDataset', time_range=(0, 0.7),
                                     clip_stride=1, **_clip))
val_dataloader = dict(batch_size=2, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='VideoFolderDataset', time_range=(0.7, 1),
                                   clip_stride=2, test_mode=True, **_clip))
test_dataloader = val_dataloader
val_evaluator = dict(type='NextFrameMetric')
test_evaluator = dict(type='NextFrameMetric', per_frame=True)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0), paramwise_cfg=_paramwise)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2, save_last=True,
                    save_best='nextframe/smooth_l1', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'), resume_state=dict(type='ResumeStateHook'))
custom_hooks = [dict(type='NextFrameVisualizationHook')]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


@pytest.fixture
def video_config(tmp_path):
    """Factory: ``video_config(kind='ebt'|'tpp')`` -> a tiny next-frame config on 2 videos."""
    root = tmp_path / 'videos'
    root.mkdir()
    write_video(str(root / 'a.mp4'), 40, fps=10, size=24, seed=1)
    write_video(str(root / 'b.avi'), 30, fps=10, size=24, seed=2)

    def make(kind: str = 'ebt') -> str:
        path = tmp_path / f'video_{kind}.py'
        path.write_text(VIDEO_CONFIG.format(kind=kind, root=str(root)))
        return str(path)

    return make


@pytest.mark.parametrize('kind', ['ebt', 'tpp'])
def test_train_then_test_next_frame(video_config, tmp_path, kind):
    config = video_config(kind)
    work = str(tmp_path / 'work')
    run_tool('tools/train.py', config, '--work-dir', work)
    assert any(name.startswith('best_nextframe_smooth_l1') for name in os.listdir(work))
    out = str(tmp_path / 'metrics.json')
    options = ['--thinking-steps', '3', '--num-candidates', '2'] if kind == 'ebt' else []
    run_tool('tools/test.py', config, osp.join(work, 'iter_4.pth'), '--work-dir',
             str(tmp_path / 'test'), '--out', out, *options)
    metrics = json.load(open(out))
    for key in ('smooth_l1', 'mse', 'psnr', 'copy_last_smooth_l1', 'smooth_l1@1'):
        assert f'nextframe/{key}' in metrics
    assert ('nextframe/energy' in metrics) == (kind == 'ebt')
    assert osp.exists(osp.join(str(tmp_path / 'test'), 'next_frame_vis', 'batch_0000.png'))
    if kind == 'tpp':
        wrong = run_tool('tools/test.py', config, osp.join(work, 'iter_4.pth'),
                         '--num-candidates', '2', check=False)
        assert wrong.returncode != 0 and 'applies to EBT models' in wrong.stderr


def test_interrupted_next_frame_run_resumes_exactly(video_config, tmp_path):
    config = video_config('ebt')
    whole, split = str(tmp_path / 'whole'), str(tmp_path / 'split')
    run_tool('tools/train.py', config, '--work-dir', whole)
    run_tool('tools/train.py', config, '--work-dir', split, '--cfg-options',
             'train_cfg.max_iters=2')
    run_tool('tools/train.py', config, '--work-dir', split, '--resume')
    expected, actual = weights(osp.join(whole, 'iter_4.pth')), weights(osp.join(split,
                                                                                 'iter_4.pth'))
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)


def test_ssv2_without_data_gives_one_clear_message(tmp_path):
    result = run_tool('tools/train.py', 'configs/ebt_ssv2_nextframe.py', '--work-dir',
                      str(tmp_path), check=False)
    assert result.returncode != 0
    assert 'data not found' in result.stderr and 'data/ssv2' in result.stderr
    assert 'configs/quickstart/ebt_nextframe_skvideo.py' in result.stderr
    assert 'Traceback' not in result.stderr
