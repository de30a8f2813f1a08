"""Scaling studies: sweep a config axis, count FLOPs and parameters, fit power laws, compare
an EBT's scaling rate with its baseline's.

    python tools/analysis/scaling.py SWEEP_CONFIG [--out-dir DIR] [--max-iters N]
        [--dry-run] [--launcher none|pytorch|slurm] [--gpus N] [--partition P]
        [--threads N]

A sweep config (``configs/scaling/*.py``) names the families (a base training config each,
one of them the ``baseline``), the axes with their values, the metric to fit and the seeds.
Every point (family x axis value x seed) is an ordinary ``tools/train.py`` run with its own
work dir ``<out-dir>/<axis>/<family>/<value>_seed<seed>``, configured by ``--cfg-options``
only, so a printed command is the whole recipe. Axis values map onto the config as:

* ``data``: training samples seen (``unit='tokens'``: tokens, a sample being the dataset's
  ``seq_len`` tokens or ``clip_len - 1`` predicted frames) -> ``train_cfg.max_iters`` =
  value / batch (rounded; the X fitted is what was really seen).
* ``batch``: ``train_dataloader.batch_size`` (iterations fixed).
* ``depth``: ``model.backbone.arch`` = dict(depth=value, heads and width of the base arch).
* ``width``: ``embed_dims`` = value, ``num_heads`` = value / the base arch's head width.
* ``flops``: total training FLOPs -> ``max_iters`` = value / FLOPs of one training step.
* ``thinking_steps``: inference scaling: one training run per family and seed, then
  ``tools/test.py --thinking-steps value`` (families without a thinker are skipped).

The learning-rate schedule follows the iterations: every ``begin`` / ``end`` of the base
``param_scheduler`` is scaled by new / base ``max_iters`` (warm-up fraction and cosine shape
kept; ``scale_schedule=False`` in the sweep turns it off). Validation runs once, at the end.

FLOPs of one training step are counted with torch's per-operator formulas
(``tools/analysis/model_size.flops_of``): forward, for an EBT the energy gradients of the
thinking loop and the second-order backward; total training FLOPs = step x iterations.
Parameters are counted with and without the embeddings (``model_size.count_parameters``).

Resuming: a point is finished when ``point.json`` is in its work dir; re-running the sweep
reads finished points and re-runs an unfinished one with ``--resume`` (its newest
checkpoint). ``--dry-run`` prints one command per point (for ``--launcher pytorch`` through
``tools/dist_train.sh``, for ``slurm`` through ``tools/slurm_train.sh``, ``--gpus`` processes
each: the data and flops axes then count the global batch) and runs nothing; re-run the
sweep without it where the work dirs are to fit and plot. ``--threads N`` sets
``OMP_NUM_THREADS`` of local runs (1 on a shared CPU: see ``run_logged``).

Sweep keys besides families / baseline / axes / metric: ``cfg_options`` (every point),
``seeds``, ``validations`` (per point, default 1: at the end), ``scale_schedule``,
``fit=dict(offset, samples, level, method)`` (see ``ebtvision.analysis``); an axis takes
``x`` (what to fit against: value, samples, tokens, iterations, params, non_embedding,
train_flops), ``max_iters``, ``head_dim`` (width), ``unit`` (data) and ``cfg_options``.

Writes ``<out-dir>/scaling.json`` (points, fits with bootstrap intervals on the exponent,
the EBT-vs-baseline rate comparison) and ``scaling.png`` (log-log, a panel per axis).
"""
import argparse
import json
import math
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
from ebtvision.utils import ArgumentParser, exit_with_error  # noqa: E402

AXES = ('data', 'batch', 'depth', 'width', 'flops', 'thinking_steps')
#: What each axis's fit uses as X by default (see ``point_x``).
DEFAULT_X = dict(data='samples', batch='value', depth='value', width='value',
                 flops='train_flops', thinking_steps='value')
X_CHOICES = ('value', 'samples', 'tokens', 'iterations', 'params', 'non_embedding',
             'train_flops')
X_LABELS = dict(value=None, samples='training samples seen', tokens='training tokens seen',
                iterations='iterations', params='parameters',
                non_embedding='non-embedding parameters', train_flops='training FLOPs')
INTEGER_AXES = ('batch', 'depth', 'width', 'thinking_steps')
POINT_FILE = 'point.json'


class SweepError(ValueError):
    """A mistake in the sweep config; reported as one ``error:`` line naming the key."""


# ----------------------------------------------------------------------------- sweep config
def resolve_path(path: str) -> str:
    """A config path as given, else relative to the repository root."""
    if osp.isabs(path) or osp.exists(path):
        return osp.abspath(path)
    return osp.join(ROOT, path)


def load_sweep(path: str) -> dict:
    """Read and check a sweep config; every mistake names the file and the key."""
    from mmengine.config import Config
    if not osp.isfile(path):
        exit_with_error(f'sweep config {path} does not exist')
    try:
        raw = Config.fromfile(path).to_dict()
    except Exception as error:  # noqa: BLE001  syntax errors and the like
        exit_with_error(f'{path}: cannot be read: {type(error).__name__}: {error}')
    try:
        return check_sweep(raw)
    except SweepError as error:
        exit_with_error(f'{path}: {error}')


def _positive(value, key: str, integer: bool):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or (
            not math.isfinite(value)):
        raise SweepError(f'{key}: values must be positive numbers, got {value!r}')
    if integer and int(value) != value:
        raise SweepError(f'{key}: values must be whole numbers, got {value!r}')
    return int(value) if integer else value


def check_sweep(raw: dict) -> dict:
    families = raw.get('families')
    if not isinstance(families, dict) or not families:
        raise SweepError('families: a dict of name -> dict(config=..., cfg_options=...) '
                         'is required')
    sweep = dict(families={}, cfg_options=dict(raw.get('cfg_options') or {}))
    for name, family in families.items():
        if isinstance(family, str):
            family = dict(config=family)
        if not isinstance(family, dict) or 'config' not in family:
            raise SweepError(f'families.{name}.config: missing')
        config = resolve_path(family['config'])
        if not osp.isfile(config):
            raise SweepError(f'families.{name}.config: {family["config"]} does not exist')
        sweep['families'][name] = dict(config=config, display=family['config'],
                                       cfg_options=dict(family.get('cfg_options') or {}))
    baseline = raw.get('baseline')
    if baseline not in families:
        raise SweepError(f'baseline: must name one of the families {sorted(families)}, '
                         f'got {baseline!r}')
    sweep['baseline'] = baseline
    axes = raw.get('axes')
    if isinstance(axes, dict):
        axes = [axes]
    if not isinstance(axes, (list, tuple)) or not axes:
        raise SweepError("axes: a list of dict(name=..., values=[...]) is required")
    sweep['axes'] = []
    for index, axis in enumerate(axes):
        key = f'axes[{index}]'
        name = axis.get('name') if isinstance(axis, dict) else None
        if name not in AXES:
            raise SweepError(f'{key}.name: unknown axis {name!r}; choose one of {AXES}')
        values = axis.get('values')
        if not isinstance(values, (list, tuple)) or len(values) < 2:
            raise SweepError(f'{key}.values: at least 2 values are needed to fit a slope')
        values = [_positive(v, f'{key}.values', name in INTEGER_AXES) for v in values]
        if len(set(values)) != len(values):
            raise SweepError(f'{key}.values: repeated values {values}')
        x = axis.get('x', DEFAULT_X[name])
        if x not in X_CHOICES:
            raise SweepError(f'{key}.x: must be one of {X_CHOICES}, got {x!r}')
        unit = axis.get('unit', 'samples')
        if name == 'data' and unit not in ('samples', 'tokens'):
            raise SweepError(f"{key}.unit: 'samples' or 'tokens', got {unit!r}")
        if name == 'data' and unit == 'tokens' and 'x' not in axis:
            x = 'tokens'
        iters = axis.get('max_iters')
        if iters is not None:
            iters = _positive(iters, f'{key}.max_iters', True)
        head_dim = axis.get('head_dim')
        if head_dim is not None:
            head_dim = _positive(head_dim, f'{key}.head_dim', True)
        sweep['axes'].append(dict(name=name, values=list(values), x=x, unit=unit,
                                  max_iters=iters, head_dim=head_dim,
                                  cfg_options=dict(axis.get('cfg_options') or {})))
    names = [axis['name'] for axis in sweep['axes']]
    if len(set(names)) != len(names):
        raise SweepError(f'axes: each axis once, got {names}')
    metric = raw.get('metric')
    if isinstance(metric, str):
        metric = dict(name=metric)
    if not isinstance(metric, dict) or not isinstance(metric.get('name'), str):
        raise SweepError("metric: a metric name the configs' evaluators log is required, "
                         "e.g. 'text/perplexity'")
    rule = metric.get('rule', 'less')
    if rule not in ('less', 'greater'):
        raise SweepError(f"metric.rule: 'less' or 'greater', got {rule!r}")
    reduce = metric.get('reduce', 'last')
    if reduce not in ('last', 'best'):
        raise SweepError(f"metric.reduce: 'last' or 'best', got {reduce!r}")
    sweep['metric'] = dict(name=metric['name'], rule=rule, reduce=reduce)
    seeds = raw.get('seeds', [0])
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SweepError(f'seeds: a list of integers, got {seeds!r}')
    sweep['seeds'] = list(seeds)
    fit = dict(offset=False, samples=2000, level=0.95, method='residuals')
    fit.update(raw.get('fit') or {})
    if fit['method'] not in ('residuals', 'cases'):
        raise SweepError(f"fit.method: 'residuals' or 'cases', got {fit['method']!r}")
    if not 0 < fit['level'] < 1:
        raise SweepError(f"fit.level: between 0 and 1, got {fit['level']!r}")
    sweep['fit'] = fit
    sweep['scale_schedule'] = bool(raw.get('scale_schedule', True))
    validations = raw.get('validations', 1)
    if isinstance(validations, bool) or not isinstance(validations, int) or validations < 1:
        raise SweepError(f'validations: a whole number >= 1, got {validations!r}')
    sweep['validations'] = validations
    return sweep


# ----------------------------------------------------------------------------- points
def read_base(config: str, options: dict):
    from ebtvision.utils import read_config
    return read_config(config, options or None)


def base_arch(cfg) -> Dict[str, int]:
    from ebtvision.models.backbones import resolve_arch
    return resolve_arch(cfg.model.backbone.get('arch'))


def tokens_per_sample(cfg) -> Optional[int]:
    """Tokens one training sample teaches: text tokens, or predicted frames of a clip."""
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    if 'seq_len' in dataset:
        return int(dataset['seq_len'])
    if 'clip_len' in dataset:
        return int(dataset['clip_len']) - 1
    return None


def schedule_options(cfg, iters: int) -> dict:
    """``param_scheduler`` milestones scaled to a run of ``iters`` iterations."""
    base_iters = int(cfg.train_cfg.max_iters)
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    options, scale = {}, iters / base_iters
    for index, scheduler in enumerate(schedulers):
        if scheduler.get('by_epoch', True):
            continue
        begin = scheduler.get('begin', 0)
        new_begin = int(round(begin * scale))
        options[f'param_scheduler.{index}.begin'] = new_begin
        if 'end' in scheduler and scheduler['end'] is not None:
            options[f'param_scheduler.{index}.end'] = max(int(round(scheduler['end'] * scale)),
                                                          new_begin + 1)
        if scheduler.get('T_max') is not None:
            options[f'param_scheduler.{index}.T_max'] = max(
                int(round(scheduler['T_max'] * scale)), 1)
    return options


class Point(dict):
    """One training run: family, axis, value, seed, its work dir and ``--cfg-options``."""

    @property
    def key(self) -> str:
        return f"{self['axis']}/{self['family']}/{self['value']}_seed{self['seed']}"


class FlopsCache:
    """Step FLOPs and parameter counts per (family, model, batch), measured once."""

    def __init__(self) -> None:
        self.cache: Dict[str, dict] = {}

    def __call__(self, config: str, options: dict) -> dict:
        cfg = read_base(config, options)
        batch = int(cfg.train_dataloader.batch_size)
        key = json.dumps([config, cfg.model.to_dict(), batch], sort_keys=True, default=str)
        if key not in self.cache:
            self.cache[key] = measure_step(cfg, batch)
        return self.cache[key]


def measure_step(cfg, batch: int) -> dict:
    """FLOPs of one training step at ``batch`` samples and the parameter counts.

    Measured at 2 and 3 samples and extrapolated to larger batches: every operator's FLOPs
    are affine in the batch (as ``model_size`` does), so this is exact and cheap."""
    import copy

    import torch
    from model_size import build_with_batch, count_parameters, flops_of
    torch.manual_seed(0)
    model, sample, _ = build_with_batch(cfg)
    model.train()

    def step_flops(rows: int) -> int:
        inputs = sample['inputs']
        batch_in = dict(sample, inputs=inputs.repeat(rows, *([1] * (inputs.dim() - 1))))
        if 'data_samples' in sample:
            batch_in['data_samples'] = [copy.deepcopy(s) for s in sample['data_samples']
                                        for _ in range(rows)]

        def step():
            losses = model(**batch_in, mode='loss')
            loss, _ = model.parse_losses(losses)
            loss.backward()

        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        flops = flops_of(step)
        model.zero_grad(set_to_none=True)
        return flops

    if batch <= 3:
        flops = step_flops(batch)
    else:
        two, three = step_flops(2), step_flops(3)
        flops = two + (batch - 2) * (three - two)
    return dict(step_flops=int(flops), **count_parameters(model))


def make_points(sweep: dict, out_dir: str, max_iters: Optional[int], flops: FlopsCache,
                world: int = 1) -> List[Point]:
    """Every point of the sweep; ``world``: processes per point (the global batch is
    ``world x batch_size x accumulative_counts``)."""
    points = []
    for axis in sweep['axes']:
        for family_name, family in sweep['families'].items():
            options = {**sweep['cfg_options'], **family['cfg_options'], **axis['cfg_options']}
            cfg = read_base(family['config'], options)
            if axis['name'] == 'thinking_steps' and 'thinker' not in cfg.model:
                continue  # nothing to think with: the baseline has one answer per pass
            for value in axis['values']:
                for seed in sweep['seeds']:
                    point = Point(family=family_name, axis=axis['name'], value=value, seed=seed,
                                  config=family['config'], display=family['display'],
                                  world=world)
                    point['work_dir'] = osp.join(out_dir, axis['name'], family_name,
                                                 f'{value}_seed{seed}')
                    point['options'] = point_options(sweep, axis, cfg, options, value, seed,
                                                     max_iters, flops, family['config'],
                                                     world)
                    if axis['name'] == 'thinking_steps':  # one shared training run
                        point['train_dir'] = osp.join(out_dir, axis['name'], family_name,
                                                      f'train_seed{seed}')
                    points.append(point)
    return points


def global_batch(cfg, world: int, batch: Optional[int] = None) -> int:
    batch = int(cfg.train_dataloader.batch_size) if batch is None else batch
    return batch * world * int(cfg.get('optim_wrapper', {}).get('accumulative_counts', 1))


def point_options(sweep, axis, cfg, options, value, seed, max_iters, flops,
                  config, world: int = 1) -> dict:
    """The ``--cfg-options`` of one point (see the module docstring for each axis)."""
    name = axis['name']
    point = dict(options)
    point['randomness.seed'] = seed
    batch = int(cfg.train_dataloader.batch_size)
    iters = axis['max_iters'] or int(cfg.train_cfg.max_iters)
    if max_iters is not None and name not in ('data', 'flops'):
        iters = max_iters
    if name == 'batch':
        point['train_dataloader.batch_size'] = batch = value
    elif name in ('depth', 'width'):
        arch = base_arch(cfg)
        head_dim = axis['head_dim'] or arch['embed_dims'] // arch['num_heads']
        if name == 'depth':
            arch['depth'] = value
        else:
            if value % head_dim:
                raise SweepError(f'axes.width.values: {value} is not a multiple of the head '
                                 f'width {head_dim} (set axes[...].head_dim)')
            arch.update(embed_dims=value, num_heads=value // head_dim)
        point['model.backbone.arch._delete_'] = True
        point.update({f'model.backbone.arch.{k}': v for k, v in arch.items()})
    elif name == 'data':
        per_sample = 1
        if axis['unit'] == 'tokens':
            per_sample = tokens_per_sample(cfg)
            if per_sample is None:
                raise SweepError("axes.data.unit: 'tokens' needs a dataset with seq_len or "
                                 'clip_len')
        iters = max(1, int(round(value / (global_batch(cfg, world, batch) * per_sample))))
    elif name == 'flops':
        # Every process runs the step on its own batch.
        step = flops(config, point)['step_flops'] * global_batch(cfg, world, 1)
        iters = max(1, int(round(value / step)))
    if max_iters is not None and name in ('data', 'flops'):
        iters = min(iters, max_iters)
    point['train_cfg.max_iters'] = iters
    # Validations spread over the run, the last one at its end (by default only that one).
    point['train_cfg.val_interval'] = int(math.ceil(iters / sweep['validations']))
    # A checkpoint half-way too, so that an interrupted point resumes from it.
    point['default_hooks.checkpoint.interval'] = max(1, iters // 2)
    if 'logger' in cfg.get('default_hooks', {}):
        point['default_hooks.logger.interval'] = max(1, min(
            int(cfg.default_hooks.logger.get('interval', 10)), iters))
    if sweep['scale_schedule']:
        point.update(schedule_options(cfg, iters))
    return point


def format_option(key: str, value) -> str:
    if isinstance(value, (list, tuple)):
        value = '[' + ','.join(map(str, value)) + ']'
    return f'{key}={value}'


def train_command(point: Point, launcher: str, gpus: int, partition: str,
                  work_dir: Optional[str] = None, resume: bool = False) -> List[str]:
    config = point['config']
    options = [format_option(k, v) for k, v in point['options'].items()]
    extra = ['--work-dir', work_dir or point['work_dir']]
    if resume:
        extra.append('--resume')
    extra += ['--cfg-options', *options]
    if launcher == 'pytorch':
        return ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, str(gpus), *extra]
    if launcher == 'slurm':
        job = point.key.replace('/', '_')
        return [f'GPUS={gpus}', 'bash', osp.join(ROOT, 'tools', 'slurm_train.sh'), partition,
                job, config, *extra]
    return [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, *extra]


def printable(command: List[str]) -> str:
    """A command to paste on another machine: ``python``, paths relative to the
    repository when run from its root (as the cluster scripts expect)."""
    if command[0] == sys.executable:
        command = ['python', *command[1:]]
    line = shlex.join(command)
    if osp.abspath(os.getcwd()) == ROOT:
        line = line.replace(ROOT + os.sep, '')
    return line


def test_command(point: Point, checkpoint: str) -> List[str]:
    """Inference scaling: the trained model evaluated with ``value`` thinking steps."""
    options = [format_option(k, v) for k, v in point['options'].items()]
    return [sys.executable, osp.join(ROOT, 'tools', 'test.py'), point['config'], checkpoint,
            '--work-dir', point['work_dir'], '--thinking-steps', str(point['value']),
            '--out', osp.join(point['work_dir'], 'test_metrics.json'), '--no-vis',
            '--cfg-options', *options]


# ----------------------------------------------------------------------------- running
def val_records(work_dir: str, name: str) -> List[dict]:
    """Every validation record holding ``name`` in the work dir's runs, oldest first
    (a resumed point has one timestamped run per attempt)."""
    records = []
    if not osp.isdir(work_dir):
        return records
    for run in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    record = json.loads(line)
                    if name in record:
                        records.append(record)
    return records


def available_metrics(work_dir: str) -> List[str]:
    keys = set()
    for run in sorted(os.listdir(work_dir)) if osp.isdir(work_dir) else []:
        path = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                for line in f:
                    if line.strip():
                        keys.update(k for k in json.loads(line) if '/' in k)
    return sorted(keys)


def run_logged(command: List[str], log: str, threads: Optional[int] = None) -> None:
    env = dict(os.environ)
    if threads:
        # On a shared CPU, one OpenMP thread per run: two spinning threads on a busy
        # 2-core box made a text EBT step 10-20x slower (0.85 s vs 10-17 s measured).
        env['OMP_NUM_THREADS'] = str(threads)
    with open(log, 'a') as f:
        f.write(f'\n$ {shlex.join(command)}\n')
        f.flush()
        code = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if code != 0:
        with open(log) as f:
            tail = f.read().strip().splitlines()[-1:] or ['']
        raise RuntimeError(f'exit code {code}: {tail[0]} (log: {log})')


def finish_point(point: Point, sweep: dict, flops: FlopsCache, seconds: float) -> dict:
    """Read the point's metrics, count its FLOPs and parameters, write ``point.json``."""
    metric = sweep['metric']
    options = point['options']
    if point['axis'] == 'thinking_steps':
        with open(osp.join(point['work_dir'], 'test_metrics.json')) as f:
            final = json.load(f)
        records = [final]
        source = point['train_dir']
    else:
        records = val_records(point['work_dir'], metric['name'])
        source = point['work_dir']
    if not records or metric['name'] not in records[-1]:
        raise SweepError(f"metric.name: {metric['name']!r} was not logged by {point.key}; "
                         f'logged: {available_metrics(source) or sorted(records[-1])}')
    values = [r[metric['name']] for r in records]
    best = min(values) if metric['rule'] == 'less' else max(values)
    cfg = read_base(point['config'], options)
    batch = int(cfg.train_dataloader.batch_size)
    iters = int(options['train_cfg.max_iters'])
    counts = dict(flops(point['config'], options))
    rows = global_batch(cfg, point.get('world', 1))
    counts['step_flops'] *= rows // batch  # every process's step
    per_sample = tokens_per_sample(cfg)
    result = dict(
        family=point['family'], axis=point['axis'], value=point['value'], seed=point['seed'],
        config=point['display'], work_dir=point['work_dir'], batch=batch, global_batch=rows,
        iterations=iters, samples=rows * iters, tokens=per_sample and rows * iters * per_sample,
        **counts, train_flops=counts['step_flops'] * iters,
        metric=metric['name'], final=values[-1], best=best,
        value_fitted=values[-1] if metric['reduce'] == 'last' else best,
        last_validation={k: v for k, v in records[-1].items()
                         if isinstance(v, (int, float)) and '/' in k},
        seconds=round(seconds, 1))
    with open(osp.join(point['work_dir'], POINT_FILE) + '.tmp', 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(osp.join(point['work_dir'], POINT_FILE) + '.tmp',
               osp.join(point['work_dir'], POINT_FILE))
    return result


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def run_point(point: Point, sweep: dict, args, flops: FlopsCache) -> dict:
    os.makedirs(point['work_dir'], exist_ok=True)
    log = osp.join(point['work_dir'], 'sweep.log')
    start = time.perf_counter()
    if point['axis'] == 'thinking_steps':
        train_dir = point['train_dir']
        done = osp.join(train_dir, 'trained')
        if not osp.isfile(done):
            resume = osp.isdir(train_dir)
            os.makedirs(train_dir, exist_ok=True)
            run_logged(train_command(point, 'none', 1, '', train_dir, resume),
                       osp.join(train_dir, 'sweep.log'), args.threads)
            open(done, 'w').close()
        run_logged(test_command(point, last_checkpoint(train_dir)), log, args.threads)
    else:
        # A work dir with a log but no point.json: an interrupted run; continue it.
        resume = osp.isfile(log)
        run_logged(train_command(point, 'none', 1, '', resume=resume), log, args.threads)
    return finish_point(point, sweep, flops, time.perf_counter() - start)


def load_finished(point: Point) -> Optional[dict]:
    path = osp.join(point['work_dir'], POINT_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


# ----------------------------------------------------------------------------- fits, plot
def fit_sweep(sweep: dict, results: List[dict]) -> dict:
    from ebtvision.analysis import bootstrap_exponent, compare_scaling_rates
    options = dict(offset=bool(sweep['fit']['offset']), samples=int(sweep['fit']['samples']),
                   level=float(sweep['fit']['level']), method=sweep['fit']['method'])
    fits, comparisons = {}, {}
    for axis in sweep['axes']:
        name, x_key = axis['name'], axis['x']
        series = {}
        for family in sweep['families']:
            rows = [r for r in results if r['axis'] == name and r['family'] == family]
            if rows:
                series[family] = ([r[x_key] if x_key != 'value' else r['value'] for r in rows],
                                  [r['value_fitted'] for r in rows])
        fits[name] = {}
        for family, (xs, ys) in series.items():
            try:
                fits[name][family] = dict(x=x_key, **bootstrap_exponent(xs, ys, **options))
            except ValueError as error:
                fits[name][family] = dict(x=x_key, error=str(error))
        baseline = sweep['baseline']
        comparisons[name] = {}
        for family in series:
            if family == baseline or baseline not in series:
                continue
            try:
                comparisons[name][f'{family}_vs_{baseline}'] = compare_scaling_rates(
                    *series[family], *series[baseline], **options)
            except ValueError as error:
                comparisons[name][f'{family}_vs_{baseline}'] = dict(error=str(error))
    return dict(fits=fits, comparisons=comparisons)


def without_nan(tree):
    """NaN (an interval a 2-point fit cannot have) as null: strict JSON."""
    if isinstance(tree, dict):
        return {k: without_nan(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [without_nan(v) for v in tree]
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree


def plot(sweep: dict, results: List[dict], fitted: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    from ebtvision.analysis import predict_power_law
    from ebtvision.analysis.scaling_fit import describe_interval
    axes_cfg = sweep['axes']
    figure, panels = plt.subplots(1, len(axes_cfg), figsize=(5.2 * len(axes_cfg), 4.2),
                                  squeeze=False)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for panel, axis in zip(panels[0], axes_cfg):
        name, x_key = axis['name'], axis['x']
        for index, family in enumerate(sweep['families']):
            colour = colours[index % len(colours)]
            rows = [r for r in results if r['axis'] == name and r['family'] == family]
            if not rows:
                continue
            xs = np.array([r['value'] if x_key == 'value' else r[x_key] for r in rows], float)
            ys = np.array([r['value_fitted'] for r in rows], float)
            panel.scatter(xs, ys, color=colour, zorder=3)
            fit = fitted['fits'][name].get(family, {})
            label = family
            if 'fit' in fit:
                grid = np.geomspace(xs.min(), xs.max(), 50)
                panel.plot(grid, predict_power_law(fit['fit'], grid), color=colour)
                label += (f" b={fit['fit']['b']:.3f} "
                          f"{describe_interval(fit['b_interval'])}")
            panel.plot([], [], color=colour, marker='o', label=label)
        panel.set_xscale('log')
        panel.set_yscale('log')
        panel.set_xlabel(X_LABELS[x_key] or name.replace('_', ' '))
        panel.set_ylabel(sweep['metric']['name'])
        comparison = next(iter(fitted['comparisons'].get(name, {}).values()), None)
        title = f'{name} axis'
        if comparison and 'percent' in comparison:
            title += f"\nrate vs baseline {percent_text(comparison)}"
        panel.set_title(title, fontsize=10)
        panel.legend(fontsize=8)
        panel.grid(True, which='both', alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def percent_text(comparison: dict) -> str:
    """``+29% [-59%, +225%]``: how much faster than the baseline, with its interval."""
    low, high = comparison['percent_interval']
    interval = ('[n/a]' if not (math.isfinite(low) and math.isfinite(high)) else
                f'[{low:+.0f}%, {high:+.0f}%]')
    return f"{comparison['percent']:+.0f}% {interval}"


def summary(sweep: dict, fitted: dict) -> str:
    from ebtvision.analysis.scaling_fit import describe_interval
    lines = ['| axis | family | X | b | 95% interval | R^2 | vs baseline |',
             '|---|---|---|---|---|---|---|']
    for axis in sweep['axes']:
        name = axis['name']
        for family, fit in fitted['fits'][name].items():
            if 'fit' not in fit:
                lines.append(f"| {name} | {family} | {fit['x']} | - | {fit['error']} | | |")
                continue
            comparison = fitted['comparisons'][name].get(f"{family}_vs_{sweep['baseline']}")
            versus = '(baseline)' if family == sweep['baseline'] else '-'
            if comparison and 'percent' in comparison:
                versus = percent_text(comparison)
            lines.append(f"| {name} | {family} | {fit['x']} | {fit['fit']['b']:.4f} | "
                         f"{describe_interval(fit['b_interval'])} | {fit['fit']['r2']:.3f} | "
                         f'{versus} |')
    return '\n'.join(lines)


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('sweep', help='sweep config (configs/scaling/*.py)')
    parser.add_argument('--out-dir', help='default: work_dirs/scaling/<sweep name>')
    parser.add_argument('--max-iters', type=int,
                        help='iterations of every point whose axis is not data or flops; '
                        'a cap on those (smoke tests)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print one command per point and run nothing')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='how --dry-run commands launch (locally points run one by one)')
    parser.add_argument('--threads', type=int,
                        help='OMP_NUM_THREADS of each local run (default: inherited)')
    parser.add_argument('--gpus', type=int, default=8,
                        help='--dry-run with a launcher: processes (GPUs) per point; the data '
                        'and flops axes count the global batch')
    parser.add_argument('--partition', default='${PARTITION}', help='slurm partition')
    # For tests of resuming: stop (as if killed) once this many points have run.
    parser.add_argument('--stop-after', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.max_iters is not None and args.max_iters < 1:
        parser.error(f'--max-iters must be >= 1, got {args.max_iters}')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    if args.gpus < 1:
        parser.error(f'--gpus must be >= 1, got {args.gpus}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    sweep = load_sweep(args.sweep)
    out_dir = osp.abspath(args.out_dir or osp.join(
        'work_dirs', 'scaling', osp.splitext(osp.basename(args.sweep))[0]))
    from ebtvision.utils import register_all_modules
    register_all_modules()
    flops = FlopsCache()
    try:
        world = args.gpus if args.dry_run and args.launcher != 'none' else 1
        points = make_points(sweep, out_dir, args.max_iters, flops, world)
    except SweepError as error:
        exit_with_error(f'{args.sweep}: {error}')
    if args.dry_run:
        for point in points:
            if point['axis'] == 'thinking_steps':
                print(printable(train_command(point, args.launcher, args.gpus, args.partition,
                                              point['train_dir'])))
                print(printable(test_command(point, osp.join(point['train_dir'],
                                                             'iter_N.pth'))))
            else:
                print(printable(train_command(point, args.launcher, args.gpus,
                                              args.partition)))
        return
    from tqdm import tqdm
    os.makedirs(out_dir, exist_ok=True)
    results, ran = [], 0
    bar = tqdm(points, desc='scaling points', unit='point')
    for point in bar:
        finished = load_finished(point)
        if finished is not None:
            results.append(finished)
            continue
        if args.stop_after is not None and ran >= args.stop_after:
            bar.close()
            print(f'stopped after {ran} point(s) (--stop-after); re-run to continue',
                  file=sys.stderr)
            return
        bar.set_postfix_str(point.key)
        try:
            results.append(run_point(point, sweep, args, flops))
        except SweepError as error:
            exit_with_error(f'{args.sweep}: {error}')
        except RuntimeError as error:
            exit_with_error(f'point {point.key} failed: {error}', code=1)
        ran += 1
    bar.close()
    fitted = fit_sweep(sweep, results)
    report = dict(sweep=osp.abspath(args.sweep), metric=sweep['metric'],
                  baseline=sweep['baseline'], fit_options=sweep['fit'],
                  axes=[dict(name=a['name'], x=a['x'], values=a['values'])
                        for a in sweep['axes']],
                  points=results, **fitted)
    with open(osp.join(out_dir, 'scaling.json'), 'w') as f:
        json.dump(without_nan(report), f, indent=1)
    plot(sweep, results, fitted, osp.join(out_dir, 'scaling.png'))
    print(summary(sweep, fitted))
    print(f"wrote {osp.join(out_dir, 'scaling.json')} and {osp.join(out_dir, 'scaling.png')}")


if __name__ == '__main__':
    main()
