"""tools/analysis/scaling.py: sweep configs, the axis -> config mapping, a tiny 2 x 2 sweep
run end to end and resumed, and one-line errors for bad sweeps."""
import glob
import json
import math
import os
import os.path as osp
import sys

import pytest

from tests.conftest import ROOT, run_tool

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import scaling  # noqa: E402

SWEEP = """
families = dict(ebt=dict(config={ebt!r}), tpp=dict(config={tpp!r}))
baseline = 'tpp'
cfg_options = {{'custom_hooks': []}}
axes = [{axes}]
metric = dict(name='nextframe/smooth_l1', rule='less')
fit = dict(samples=200)
"""


def write_sweep(tmp_path, video_config, axes="dict(name='depth', values=[1, 2])"):
    text = SWEEP.format(ebt=video_config('ebt'), tpp=video_config('tpp'), axes=axes)
    path = tmp_path / 'sweep.py'
    path.write_text(text)
    return str(path)


def dry_run(capsys, *argv):
    scaling.main([*argv, '--dry-run'])
    return [line.split() for line in capsys.readouterr().out.splitlines()]


def options_of(command):
    return dict(arg.split('=', 1) for arg in command[command.index('--cfg-options') + 1:])


SWEEPS = sorted(glob.glob(osp.join(ROOT, 'configs', 'scaling', '*.py')))


@pytest.mark.parametrize('path', SWEEPS, ids=osp.basename)
def test_the_bundled_sweeps_are_valid_and_print_a_command_per_point(path, capsys, tmp_path):
    sweep = scaling.load_sweep(path)
    commands = dry_run(capsys, path, '--out-dir', str(tmp_path))
    expected = sum(len(axis['values']) for axis in sweep['axes']) * len(sweep['seeds']) * len(
        sweep['families'])
    assert len(commands) == expected
    assert len({c[c.index('--work-dir') + 1] for c in commands}) == expected
    for command in commands:  # `validations` spread over the run (MMEngine adds the last)
        options = options_of(command)
        iters = int(options['train_cfg.max_iters'])
        assert int(options['train_cfg.val_interval']) == math.ceil(iters / sweep['validations'])


def test_axis_values_map_onto_the_config(tmp_path, video_config, capsys):
    sweep = write_sweep(tmp_path, video_config, axes=(
        "dict(name='data', values=[8, 40]), dict(name='width', values=[16, 32], "
        "max_iters=3), dict(name='batch', values=[1, 4])"))
    commands = dry_run(capsys, sweep, '--out-dir', str(tmp_path / 'out'))
    assert len(commands) == 12  # 2 families x 3 axes x 2 values, one seed
    by_dir = {c[c.index('--work-dir') + 1]: options_of(c) for c in commands}
    data = by_dir[str(tmp_path / 'out' / 'data' / 'ebt' / '40_seed0')]
    assert data['train_cfg.max_iters'] == '20'  # 40 samples at the tiny config's batch 2
    assert data['train_cfg.val_interval'] == '20'
    width = by_dir[str(tmp_path / 'out' / 'width' / 'tpp' / '32_seed0')]
    assert (width['model.backbone.arch.embed_dims'], width['model.backbone.arch.num_heads'],
            width['model.backbone.arch.depth']) == ('32', '4', '1')  # heads of 8 as the base
    assert width['train_cfg.max_iters'] == '3'
    batch = by_dir[str(tmp_path / 'out' / 'batch' / 'ebt' / '4_seed0')]
    assert batch['train_dataloader.batch_size'] == '4'
    assert batch['train_cfg.max_iters'] == '4'  # the base's iterations


def test_the_schedule_follows_the_iterations():
    from ebtvision.utils import read_config
    cfg = read_config(osp.join(ROOT, 'configs', 'quickstart', 'ebt_text_pydoc.py'))
    # 800 iterations: warm-up to 100, cosine 100 -> 800; a quarter of the run keeps the shape.
    assert scaling.schedule_options(cfg, 200) == {
        'param_scheduler.0.begin': 0, 'param_scheduler.0.end': 25,
        'param_scheduler.1.begin': 25, 'param_scheduler.1.end': 200}


def test_dry_run_commands_go_through_the_cluster_launchers(tmp_path, video_config, capsys):
    sweep = write_sweep(tmp_path, video_config)
    slurm = dry_run(capsys, sweep, '--launcher', 'slurm', '--partition', 'gpu')
    assert len(slurm) == 4
    assert all(c[:2] == ['GPUS=8', 'bash'] and c[2].endswith('tools/slurm_train.sh')
               and c[3] == 'gpu' for c in slurm)
    torchrun = dry_run(capsys, sweep, '--launcher', 'pytorch', '--gpus', '4')
    assert all(c[1].endswith('tools/dist_train.sh') and c[3] == '4' for c in torchrun)
    # The data axis counts the global batch: 4 processes x 2 samples.
    data = write_sweep(tmp_path, video_config, axes="dict(name='data', values=[80, 160])")
    iters = [options_of(c)['train_cfg.max_iters']
             for c in dry_run(capsys, data, '--launcher', 'pytorch', '--gpus', '4')]
    assert iters == ['10', '20', '10', '20']
    assert not (tmp_path / 'work_dirs').exists()


def test_thinking_steps_train_once_and_test_each_count(tmp_path, video_config, capsys):
    sweep = write_sweep(tmp_path, video_config,
                        axes="dict(name='thinking_steps', values=[1, 4])")
    commands = dry_run(capsys, sweep, '--out-dir', str(tmp_path / 'out'))
    # Transformer++ has no thinker: only the EBT's points, a training and a test each.
    assert [c[1].rsplit('/', 1)[-1] for c in commands] == ['train.py', 'test.py'] * 2
    assert all('/ebt/' in c[c.index('--work-dir') + 1] for c in commands)
    tests = [c for c in commands if c[1].endswith('test.py')]
    assert [c[c.index('--thinking-steps') + 1] for c in tests] == ['1', '4']


def val_metric(work_dir):
    """The last validation smooth-L1 the point's runs logged, read independently."""
    values = []
    for run in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            for line in open(path):
                record = json.loads(line)
                if 'nextframe/smooth_l1' in record:
                    values.append(record['nextframe/smooth_l1'])
    return values[-1]


def test_a_tiny_sweep_runs_resumes_and_writes_its_fits(tmp_path, video_config):
    sweep = write_sweep(tmp_path, video_config)
    out = tmp_path / 'out'
    args = ['tools/analysis/scaling.py', sweep, '--out-dir', str(out), '--max-iters', '2',
            '--threads', '1']
    # As if killed after two points: both EBT points finished, no report yet.
    run_tool(*args, '--stop-after', '2')
    first, second = out / 'depth' / 'ebt' / '1_seed0', out / 'depth' / 'ebt' / '2_seed0'
    assert (first / 'point.json').is_file() and (second / 'point.json').is_file()
    assert not (out / 'depth' / 'tpp').exists() and not (out / 'scaling.json').exists()
    # The second point lost its result (killed while being written): it must run again.
    (second / 'point.json').unlink()
    before = {name: os.stat(first / name).st_mtime_ns for name in os.listdir(first)}
    runs_before = sorted(os.listdir(first))

    result = run_tool(*args)
    assert {name: os.stat(first / name).st_mtime_ns for name in os.listdir(first)} == before
    assert sorted(os.listdir(first)) == runs_before  # no new run in the finished point
    log = (second / 'sweep.log').read_text()
    assert log.count('$ ') == 2 and '--resume' in log.split('$ ')[2].split('\n')[0]

    report = json.loads((out / 'scaling.json').read_text())
    assert (out / 'scaling.png').stat().st_size > 10_000
    points = {(p['family'], p['value']): p for p in report['points']}
    assert sorted(points) == [('ebt', 1), ('ebt', 2), ('tpp', 1), ('tpp', 2)]
    for (family, depth), point in points.items():
        work_dir = out / 'depth' / family / f'{depth}_seed0'
        assert point['final'] == pytest.approx(val_metric(str(work_dir)))
        assert point['iterations'] == 2 and point['samples'] == 4
        assert point['train_flops'] == 2 * point['step_flops']
        assert 0 < point['non_embedding'] < point['params']
    for family in ('ebt', 'tpp'):  # a second block costs FLOPs and parameters
        assert points[(family, 2)]['step_flops'] > points[(family, 1)]['step_flops']
        assert points[(family, 2)]['non_embedding'] > points[(family, 1)]['non_embedding']
    # Thinking: energy gradients and a second-order backward on top of the forward.
    assert points[('ebt', 1)]['step_flops'] > 2 * points[('tpp', 1)]['step_flops']
    fit = report['fits']['depth']['ebt']
    ys = [points[('ebt', d)]['final'] for d in (1, 2)]
    assert fit['fit']['b'] == pytest.approx(math.log(ys[1] / ys[0]) / math.log(2))
    assert fit['b_interval'] == [None, None]  # 2 points leave no degree of freedom
    comparison = report['comparisons']['depth']['ebt_vs_tpp']
    assert comparison['ratio'] == pytest.approx(
        fit['fit']['b'] / report['fits']['depth']['tpp']['fit']['b'])
    assert '| depth | ebt |' in result.stdout


@pytest.mark.parametrize('old, new, message', [
    ("name='depth'", "name='depht'", "axes[0].name: unknown axis 'depht'"),
    ('[1, 2]', '[1, 0]', 'axes[0].values: values must be positive numbers, got 0'),
    ('[1, 2]', '[2, -1.5]', 'axes[0].values: values must be positive numbers, got -1.5'),
    ("tpp=dict(config=", "tpp=dict(config='configs/nowhere.py', x=",
     'families.tpp.config: configs/nowhere.py does not exist'),
    ("baseline = 'tpp'", "baseline = 'dit'", "baseline: must name one of the families"),
    ("metric = dict(name='nextframe/smooth_l1', rule='less')", '', 'metric: a metric name'),
])
def test_bad_sweeps_are_one_line_naming_file_and_key(tmp_path, video_config, capsys,
                                                     old, new, message):
    path = write_sweep(tmp_path, video_config)
    text = open(path).read()
    assert old in text
    open(path, 'w').write(text.replace(old, new))
    with pytest.raises(SystemExit) as exit_info:
        scaling.main([path, '--dry-run'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f'error: {path}: ') and message in err
