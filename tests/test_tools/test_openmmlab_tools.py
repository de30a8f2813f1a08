"""The OpenMMLab-style helper tools on one real quick-start run (2 iterations, logged to
TensorBoard through configs/_base_/vis_backends/tensorboard.py):
tools/misc/print_config.py, tools/analysis/analyze_logs.py,
tools/model_converters/publish_model.py."""
import glob
import hashlib
import importlib.util
import json
import os.path as osp

import cv2
import pytest
import torch
from conftest import ROOT, run_tool
from mmengine.config import Config

pytestmark = pytest.mark.slow

QUICKSTART = osp.join(ROOT, 'configs', 'quickstart', 'ebt_denoise_skimage.py')
HAS_TENSORBOARD = importlib.util.find_spec('tensorboard') is not None


def load_tool(*path):
    """A tool script as a module, to call its ``main(argv)`` in this process."""
    spec = importlib.util.spec_from_file_location('tool_' + path[-1][:-3],
                                                  osp.join(ROOT, 'tools', *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def error_line(capsys, call) -> str:
    """Run ``call``; it must exit 2 with exactly one ``error:`` line on stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        call()
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), lines
    return lines[0]


@pytest.fixture(scope='module')
def quickstart_run(tmp_path_factory):
    """``(work_dir, scalars.json)`` of the image denoising quick-start, 2 iterations with a
    validation at the second, the TensorBoard fragment in its body when tensorboard is
    installed (MMEngine refuses it as a second _base_: both would define `visualizer`)."""
    root = tmp_path_factory.mktemp('quickstart')
    config = root / 'quickstart_tb.py'
    fragment = open(osp.join(ROOT, 'configs', '_base_', 'vis_backends', 'tensorboard.py')).read()
    config.write_text(f'_base_ = [{QUICKSTART!r}]\n' + (fragment if HAS_TENSORBOARD else ''))
    work = root / 'work'
    run_tool('tools/train.py', str(config), '--work-dir', str(work), '--cfg-options',
             'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=2')
    scalars, = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    return work, scalars


def read_records(scalars):
    records = [json.loads(line) for line in open(scalars)]
    return [r for r in records if 'iter' in r], [r for r in records if 'iter' not in r]


@pytest.mark.skipif(not HAS_TENSORBOARD, reason='tensorboard is not installed')
def test_quickstart_logs_are_viewable_in_tensorboard(quickstart_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    work, scalars = quickstart_run
    events, = glob.glob(str(work / '*' / 'vis_data' / 'events.out.tfevents.*'))
    accumulator = EventAccumulator(events, size_guidance={'scalars': 0, 'images': 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    for key in ('loss', 'alpha', 'energy_first_step', 'lr', 'denoise/psnr@0.1',
                'thinking/energy@0.1'):
        assert key in tags['scalars'], key
    assert 'val_denoise' in tags['images'] and 'val_thinking' in tags['images']
    train, val = read_records(scalars)  # the local files are still written beside it
    assert [e.value for e in accumulator.Scalars('loss')] == pytest.approx(
        [r['loss'] for r in train], rel=1e-6)
    assert accumulator.Scalars('denoise/psnr@0.1')[0].value == pytest.approx(
        val[0]['denoise/psnr@0.1'], rel=1e-6)


def test_plot_curve_reads_the_logged_scalars(quickstart_run, tmp_path, capsys):
    work, scalars = quickstart_run
    train, val = read_records(scalars)
    out = tmp_path / 'curves.png'
    keys = ['loss', 'alpha', 'energy_first_step', 'denoise/psnr@0.1']
    load_tool('analysis', 'analyze_logs.py').main(
        ['plot_curve', str(work), '--keys', *keys, '--legend', 'quick', '--out', str(out)])
    lines = capsys.readouterr().out.splitlines()
    for key in keys[:3]:
        assert (f'quick: {key}: 2 points, iter 1..2, first {train[0][key]:.6g}, '
                f'last {train[1][key]:.6g}') in lines
    # One validation, at iteration 2 (MMEngine stamps it with the epoch: 0).
    assert f'quick: denoise/psnr@0.1: 1 point, iter 2..2, first ' \
        f'{val[0]["denoise/psnr@0.1"]:.6g}, last {val[0]["denoise/psnr@0.1"]:.6g}' in lines
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (4 * 260, 700, 3)  # a panel per key


def test_plot_curve_mistakes_end_in_one_line(quickstart_run, tmp_path, capsys):
    work, scalars = quickstart_run
    tool = load_tool('analysis', 'analyze_logs.py')
    line = error_line(capsys, lambda: tool.main(['plot_curve', scalars, '--keys', 'loss',
                                                 'psnr@0.1']))
    assert f"key 'psnr@0.1' is not in {scalars} (did you mean denoise/psnr@0.1" in line
    assert 'alpha, base_lr,' in line  # the keys it has
    assert error_line(capsys, lambda: tool.main(['plot_curve', str(tmp_path / 'nope')])) == \
        f'error: {tmp_path / "nope"} does not exist'
    line = error_line(capsys, lambda: tool.main(['plot_curve', str(tmp_path)]))
    assert 'holds no vis_data/scalars.json' in line
    assert not list(tmp_path.iterdir())  # nothing written


def test_cal_train_time(quickstart_run, capsys):
    _, scalars = quickstart_run
    train, _ = read_records(scalars)
    tool = load_tool('analysis', 'analyze_logs.py')
    tool.main(['cal_train_time', scalars, '--include-outliers'])
    out = capsys.readouterr().out
    times = [r['time'] for r in train]
    assert f'average iter time: {sum(times) / len(times):.4f} s/iter' in out
    slowest = max(train, key=lambda r: r['time'])
    assert f'slowest iter: {slowest["iter"]}, time: {slowest["time"]:.4f} s/iter' in out
    tool.main(['cal_train_time', scalars])  # the first window (start-up) left out
    assert f'average iter time: {times[1]:.4f} s/iter' in capsys.readouterr().out


def test_publish_model(quickstart_run, tmp_path, capsys):
    from ebtvision.fileio import load_checkpoint_weights_only
    from ebtvision.registry import MODELS
    from ebtvision.utils import register_all_modules
    work, _ = quickstart_run
    tool = load_tool('model_converters', 'publish_model.py')
    tool.main([str(work / 'iter_2.pth'), str(tmp_path / 'ebt_quickstart.pth')])
    published, = glob.glob(str(tmp_path / 'ebt_quickstart-*.pth'))
    data = open(published, 'rb').read()
    assert published.endswith(f'-{hashlib.sha256(data).hexdigest()[:8]}.pth')
    original = load_checkpoint_weights_only(work / 'iter_2.pth')
    assert 'optimizer' in original and 'message_hub' in original
    checkpoint = torch.load(published, weights_only=True)  # plain torch, no allow-list
    assert set(checkpoint) == {'meta', 'state_dict'}
    assert checkpoint['meta']['iter'] == original['meta']['iter'] == 2
    assert checkpoint['state_dict'].keys() == original['state_dict'].keys()
    for key, value in original['state_dict'].items():
        assert torch.equal(checkpoint['state_dict'][key], value), key
    register_all_modules()
    model = MODELS.build(Config.fromfile(QUICKSTART).model)
    model.load_state_dict(load_checkpoint_weights_only(published)['state_dict'])  # strict
    assert 'dropped: message_hub, optimizer, param_schedulers' in capsys.readouterr().out

    again = lambda *extra: tool.main([str(work / 'iter_2.pth'),  # noqa: E731
                                      str(tmp_path / 'ebt_quickstart.pth'), *extra])
    assert error_line(capsys, again) == f'error: {published} exists; pass --force to replace it'
    again('--force')
    assert open(published, 'rb').read() == data and len(list(tmp_path.iterdir())) == 1
    line = error_line(capsys, lambda: tool.main([str(tmp_path / 'nope.pth'), 'out.pth']))
    assert line == f'error: checkpoint {tmp_path / "nope.pth"} does not exist'
    line = error_line(capsys, lambda: tool.main([published, str(tmp_path / 'x.pt')]))
    assert 'x.pt must end with .pth' in line


def test_print_config_resolves_bases_and_options(tmp_path, capsys):
    tool = load_tool('misc', 'print_config.py')
    tool.main([QUICKSTART, '--cfg-options', 'train_cfg.max_iters=7',
               'model.thinker.num_steps=3'])
    printed = tmp_path / 'printed.py'
    printed.write_text(capsys.readouterr().out)
    expected = Config.fromfile(QUICKSTART)
    expected.merge_from_dict({'train_cfg.max_iters': 7, 'model.thinker.num_steps': 3})
    resolved = Config.fromfile(str(printed))  # stdout alone is a config, with no _base_
    assert resolved.to_dict() == expected.to_dict()
    assert resolved.optim_wrapper.optimizer.type == 'AdamW'  # from the schedule base
    assert resolved.default_hooks.logger.interval == 25  # the schedule over the runtime

    line = error_line(capsys, lambda: tool.main(['configs/nope.py']))
    assert line == 'error: config configs/nope.py does not exist'
    line = error_line(capsys, lambda: tool.main([QUICKSTART, '--cfg-options',
                                                 'custom_hooks.5.interval=1']))
    assert line.startswith('error: --cfg-options: Index 5 exceeds the length of list')
    line = error_line(capsys, lambda: tool.main([QUICKSTART, '--vis-backend', 'tensorbord']))
    assert "unknown backend 'tensorbord'; known: tensorboard, wandb" in line


@pytest.mark.skipif(not HAS_TENSORBOARD, reason='tensorboard is not installed')
def test_vis_backend_option_merges_the_fragment(capsys, tmp_path):
    tool = load_tool('misc', 'print_config.py')
    save = tmp_path / 'resolved.py'
    tool.main([QUICKSTART, '--vis-backend', 'tensorboard', '--save-path', str(save)])
    backends = Config.fromfile(str(save)).visualizer.vis_backends
    assert [b['type'] for b in backends] == ['LocalVisBackend', 'TensorboardVisBackend']
    if importlib.util.find_spec('wandb') is None:  # a missing package: named, before any run
        line = error_line(capsys, lambda: tool.main([QUICKSTART, '--vis-backend', 'wandb']))
        assert line == ('error: --vis-backend: WandbVisBackend needs wandb, which is not '
                        'installed: pip install wandb')
