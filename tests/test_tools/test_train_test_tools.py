"""tools/train.py and tools/test.py end to end on tiny models and generated images."""
import glob
import json
import os
import os.path as osp
import pytest
import torch
from conftest import run_tool, weights

from ebtvision.engine import load_checkpoint_weights_only

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.slow


@pytest.mark.parametrize('kind', ['ebt', 'dit', 'ebt_replay'])
def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tiny_config, tmp_path, kind):
    # ebt_replay: the replay buffer's samples and generator are in the checkpoint.
    config = tiny_config(kind)
    whole, split = str(tmp_path / 'whole'), str(tmp_path / 'split')
    run_tool('tools/train.py', config, '--work-dir', whole)
    # "crash" after iteration 2, then resume from the work dir's newest checkpoint
    run_tool('tools/train.py', config, '--work-dir', split, '--cfg-options',
             'train_cfg.max_iters=2')
    resumed = run_tool('tools/train.py', config, '--work-dir', split, '--resume')
    assert 'resumed epoch: 0, iter: 2' in (resumed.stdout + resumed.stderr)
    expected, actual = weights(osp.join(whole, 'iter_4.pth')), weights(osp.join(split,
                                                                                 'iter_4.pth'))
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)
    if kind == 'ebt_replay':
        buffer = actual['replay_buffer._extra_state']['storage']
        assert len(buffer['prediction']) == 6  # full after 4 batches of 4
    # the best checkpoint by validation PSNR is kept
    assert any(name.startswith('best_denoise_psnr@0.1') for name in os.listdir(whole))


def test_test_tool_reports_metrics_with_test_time_options(tiny_config, tmp_path):
    config = tiny_config('ebt')
    work = str(tmp_path / 'work')
    run_tool('tools/train.py', config, '--work-dir', work, '--cfg-options',
             'train_cfg.max_iters=2')
    out = str(tmp_path / 'metrics.json')
    result = run_tool('tools/test.py', config, osp.join(work, 'iter_2.pth'), '--work-dir',
                      str(tmp_path / 'test'), '--noise-levels', '0.1', '0.3',
                      '--thinking-steps', '3', '--out', out)
    metrics = json.load(open(out))
    for key in ('psnr@0.1', 'psnr@0.3', 'noisy_psnr@0.3', 'ssim@0.1', 'mse@0.3'):
        assert f'denoise/{key}' in metrics, result.stdout[-2000:]
    assert metrics['denoise/noisy_psnr@0.1'] > metrics['denoise/noisy_psnr@0.3']
    assert osp.exists(osp.join(str(tmp_path / 'test'), 'denoise_vis', 'batch_0000.png'))
    assert 'thinking/energy@0.3' in metrics and metrics['thinking/steps_used@0.1'] == 3
    # Self-verification and adaptive stopping from the command line: a huge tolerance
    # stops every candidate after its first step.
    run_tool('tools/test.py', config, osp.join(work, 'iter_2.pth'), '--work-dir',
             str(tmp_path / 'test2'), '--thinking-steps', '3', '--num-candidates', '2',
             '--tolerance', '100', '--no-vis', '--out', out)
    metrics = json.load(open(out))
    assert metrics['thinking/steps_used@0.1'] == 1 and 'denoise/psnr@0.2' in metrics
    wrong = run_tool('tools/test.py', config, osp.join(work, 'iter_2.pth'),
                     '--reverse-steps', '5', check=False)
    assert wrong.returncode != 0 and 'applies to DiT models' in wrong.stderr


def test_missing_data_gives_one_clear_message(tmp_path):
    result = run_tool('tools/train.py', 'configs/ebt_coco_denoise.py', '--work-dir',
                      str(tmp_path), check=False)
    assert result.returncode != 0
    assert 'data not found' in result.stderr and 'data/coco/train2014' in result.stderr
    assert 'quickstart' in result.stderr
    assert 'Traceback' not in result.stderr


def test_checkpoint_that_runs_code_is_refused_by_test_tool(tiny_config, tmp_path):
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Evil()}, path)
    result = run_tool('tools/test.py', tiny_config('ebt'), str(path), '--work-dir',
                      str(tmp_path / 'w'), check=False)
    assert result.returncode != 0 and 'weights-only' in result.stderr
    assert not marker.exists()


def test_bare_resume_never_starts_over_on_unreadable_checkpoints(tiny_config, tmp_path):
    config, work = tiny_config('ebt'), tmp_path / 'work'
    work.mkdir()
    (work / 'iter_2.pth').write_bytes(b'\x80\x02truncated')
    (work / 'iter_4.pth').write_bytes(b'')
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    before = {path.name: path.read_bytes() for path in work.iterdir()}
    result = run_tool('tools/train.py', config, '--work-dir', str(work), '--resume', check=False)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(error) == 1 and 'none of the 2 checkpoint(s)' in error[0]
    assert 'iter_2.pth' in error[0] and 'iter_4.pth' in error[0]
    assert 'another --work-dir' in error[0]
    for name in ('iter_2.pth', 'iter_4.pth'):  # each named with its reason as it is skipped
        assert f'skipping {work / name}' in result.stdout + result.stderr
    assert {path.name: path.read_bytes() for path in work.iterdir()} == before


def test_bare_resume_keeps_an_unreadable_newer_checkpoint_aside(tiny_config, tmp_path):
    config, work = tiny_config('ebt'), tmp_path / 'work'
    run_tool('tools/train.py', config, '--work-dir', str(work), '--cfg-options',
             'train_cfg.max_iters=2')
    (work / 'iter_4.pth').write_bytes(b'\x80\x02cut short by a crash')
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    (work / '.tmp-abcd.part').write_bytes(b'half a checkpoint')
    result = run_tool('tools/train.py', config, '--work-dir', str(work), '--resume')
    log = result.stdout + result.stderr
    assert f'skipping {work / "iter_4.pth"}' in log and 'unreadable' in log
    assert 'resumed epoch: 0, iter: 2' in log
    assert (work / 'iter_4.pth.unreadable').read_bytes() == b'\x80\x02cut short by a crash'
    assert 'state_dict' in load_checkpoint_weights_only(work / 'iter_4.pth')
    assert (work / 'last_checkpoint').read_text().endswith('iter_4.pth')
    assert not (work / '.tmp-abcd.part').exists()


@pytest.mark.parametrize('args, message', [
    (['--thinking-steps', '0'], 'argument --thinking-steps: value must be an integer >= 1'),
    (['--thinking-steps', '-1'], 'argument --thinking-steps: value must be an integer >= 1'),
    (['--alpha', 'nan'], 'argument --alpha: value must be finite'),
    (['--noise-levels', '-0.1'], 'argument --noise-levels: value must lie in (0, 1]'),
    (['--cfg-options', 'model.test_cfg.num_stepz=3'],
     "EBTDenoiser: unknown test_cfg key(s) ['num_stepz']; valid keys: ['alpha',"),
    (['--cfg-options', 'model.test_cfg.tolerance=-1'], 'test_cfg.tolerance must be >= 0'),
    (['--cfg-options', 'model.type=EBTDenoizer'], 'EBTDenoizer is not in the'),
    (['--recurse', '2'], '--recurse applies to DiT models, not EBTDenoiser'),
    (['--cfg-options', 'model.test_cfg.respace=True'], "unknown test_cfg key(s) ['respace']"),
])
def test_test_tool_mistakes_end_in_one_line(tiny_config, tmp_path, args, message):
    checkpoint = tmp_path / 'weights.pth'
    torch.save({'state_dict': {}}, checkpoint)
    result = run_tool('tools/test.py', tiny_config('ebt'), str(checkpoint), '--work-dir',
                      str(tmp_path / 'w'), *args, check=False)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith('error: ')
    assert message in result.stderr, result.stderr[-2000:]


def test_missing_config_and_checkpoint_end_in_one_line(tiny_config, tmp_path):
    for tool, args, message in [
            ('tools/test.py', ['configs/nope.py', 'x.pth'], 'config configs/nope.py'),
            ('tools/test.py', [tiny_config('ebt'), 'nope.pth'], 'checkpoint nope.pth'),
            ('tools/train.py', ['configs/nope.py'], 'config configs/nope.py'),
            ('tools/train.py', [tiny_config('ebt'), '--resume', 'nope.pth'],
             '--resume: checkpoint nope.pth')]:
        result = run_tool(tool, *args, check=False)
        assert result.returncode == 2, (tool, args, result.stderr[-2000:])
        assert result.stderr.splitlines() == [f'error: {message} does not exist'], result.stderr


def training_losses(work_dir):
    """The loss of every training iteration, from the run's ``vis_data/scalars.json``."""
    path, = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    records = [json.loads(line) for line in open(path)]
    return torch.tensor([record['loss'] for record in records if 'loss' in record])


def test_amp_trains_in_bfloat16_on_cpu_close_to_float32(tiny_config, tmp_path):
    config = tiny_config('ebt')
    options = ['--cfg-options', 'train_cfg.max_iters=3', 'train_cfg.val_interval=10']
    run_tool('tools/train.py', config, '--work-dir', str(tmp_path / 'fp32'), *options)
    run_tool('tools/train.py', config, '--work-dir', str(tmp_path / 'amp'), '--amp', *options)
    dumped, = glob.glob(str(tmp_path / 'amp' / '*' / 'vis_data' / 'config.py'))
    text = open(dumped).read()
    assert "type='FiniteCheckAmpOptimWrapper'" in text and "dtype='bfloat16'" in text
    reference, losses = training_losses(str(tmp_path / 'fp32')), training_losses(
        str(tmp_path / 'amp'))
    assert len(losses) == 3 and torch.isfinite(losses).all()
    torch.testing.assert_close(losses, reference, rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize('args, message', [
    (['--amp', '--amp-dtype', 'fp8'], "argument --amp-dtype: invalid choice: 'fp8'"),
    (['--amp-dtype', 'float16'], '--amp-dtype needs --amp'),
    (['--amp', '--cfg-options', 'optim_wrapper.dtype=float32'],
     "--amp: the mixed-precision dtype must be one of ('bfloat16', 'float16'), got "
     "'float32'"),
])
def test_amp_mistakes_end_in_one_line(tiny_config, tmp_path, args, message):
    result = run_tool('tools/train.py', tiny_config('ebt'), '--work-dir', str(tmp_path), *args,
                      check=False)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], lines
