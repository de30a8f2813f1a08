"""How much thinking buys: quality vs thinking steps, candidates and noise level.

    python tools/analysis/thinking_curve.py CONFIG CHECKPOINT
        [--steps 1 2 3 4 6 8] [--candidates 1 4] [--noise-levels 0.1 0.2 0.3]
        [--tolerance T] [--dit-config C --dit-checkpoint K [--dit-steps 1 2 5 10 25 50 100]]
        [--split val|test|both] [--max-samples N] [--batch-size B] [--out-dir DIR]

Evaluates an EBT checkpoint on its config's validation (or test) data for every step
count x candidate count (self-verification), and for denoisers every noise level (the
training level is in distribution, the others out of it). ``--tolerance`` adds
adaptive-compute rows (one candidate, the largest step count as the budget) with the
steps actually used. With a DiT checkpoint its PSNR vs reverse steps goes on the same
axes. Images are scored by PSNR (0-255, as ``PSNRMetric``), videos by latent smooth-L1
(``NextFrameMetric``), language models by Dyck completion accuracy when the data has
completions, else perplexity, with perplexity and next-token accuracy beside it
(``LanguageModelMetric``). Language models are evaluated on both splits by default: the
Dyck configs validate in distribution and test out of it (longer, deeper prefixes).

Cost is counted per image / clip / sequence, honestly: an EBT step is a forward and a
backward pass per candidate, plus one forward to score the final candidates
(self-verification needs it): ``forward = M (S + 1)``, ``backward = M S``; a DiT
reverse step is one forward (``DiTDenoiser.num_passes``: every run of the reverse process).

Writes ``<out-dir>/thinking_curve.json`` (every row), ``thinking_curve.png`` (one panel per
noise level or split: quality vs passes) and prints a Markdown table. Default out-dir:
``work_dirs/<config name>/thinking_curve``. Checkpoints are loaded weights-only.
"""
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ebtvision.models.thinking.options import (cli_type, noise_level, non_negative,  # noqa
                                               positive_int)
from ebtvision.utils import ArgumentParser, exit_on_missing_extra  # noqa: E402


class CurveError(RuntimeError):
    """Bad input; reported as ``error: ...`` without a traceback."""


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config',
                        help='EBT config (EBTDenoiser, EBTNextFrame or EBTLanguageModel)')
    parser.add_argument('checkpoint', help='its checkpoint (loaded weights-only)')
    parser.add_argument('--steps', type=cli_type(positive_int), nargs='+',
                        default=[1, 2, 3, 4, 6, 8])
    parser.add_argument('--candidates', type=cli_type(positive_int), nargs='+', default=[1, 4])
    parser.add_argument('--noise-levels', type=cli_type(noise_level), nargs='+',
                        default=[0.1, 0.2, 0.3],
                        help='denoisers: noise levels to evaluate')
    parser.add_argument('--tolerance', type=cli_type(non_negative),
                        help='add adaptive-compute rows with this relative energy tolerance')
    parser.add_argument('--dit-config', help='DiT baseline config (denoisers only)')
    parser.add_argument('--dit-checkpoint', help='DiT baseline checkpoint')
    parser.add_argument('--dit-steps', type=cli_type(positive_int), nargs='+',
                        default=[1, 2, 5, 10, 25, 50, 100])
    parser.add_argument('--split', choices=('val', 'test', 'both'),
                        help='data split (default: val; both for language models)')
    parser.add_argument('--max-samples', type=cli_type(positive_int),
                        help='evaluate the first N images / clips / sequences')
    parser.add_argument('--batch-size', type=cli_type(positive_int), default=8)
    parser.add_argument('--out-dir', help='default: work_dirs/<config name>/thinking_curve')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if bool(args.dit_config) != bool(args.dit_checkpoint):
        parser.error('--dit-config and --dit-checkpoint go together')
    for name in ('steps', 'candidates', 'dit_steps'):
        if min(getattr(args, name)) < 1:
            parser.error(f'--{name.replace("_", "-")} values must be >= 1')
    if args.tolerance is not None and args.tolerance <= 0:
        parser.error('--tolerance must be > 0')
    return args


# ----------------------------------------------------------------------------- data
def load_batches(cfg, split: str, max_samples: Optional[int], batch_size: int, model) -> List:
    """The split's samples, preprocessed once: ``[(inputs, data_samples), ...]``."""
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader, Subset

    from ebtvision.registry import DATASETS
    from ebtvision.utils.data_check import DataNotFoundError, check_data_roots
    key = f'{split}_dataloader'
    loader_cfg = cfg.get(key)
    if not loader_cfg or 'dataset' not in loader_cfg:
        raise CurveError(f'the config defines no {key}.dataset')
    try:
        check_data_roots(cfg, (key, ))
    except DataNotFoundError as error:
        raise CurveError(str(error)) from None
    dataset = DATASETS.build(loader_cfg['dataset'])
    if max_samples:
        dataset = Subset(dataset, range(min(max_samples, len(dataset))))
    if len(dataset) == 0:
        raise CurveError(f'{key}.dataset is empty')
    batches = []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=pseudo_collate):
        data = model.data_preprocessor(batch, False)
        batches.append((data['inputs'], data['data_samples']))
    return batches


def evaluate(model, batches, metrics) -> Dict[str, float]:
    """Run ``predict`` over the batches; returns the metrics and seconds per sample."""
    for metric in metrics:
        metric.results = []
    count, start = 0, time.perf_counter()
    for inputs, samples in batches:
        with torch.no_grad():
            outputs = model.predict(inputs, samples)
        for metric in metrics:
            metric.process(None, outputs)
        count += len(samples)
    seconds = (time.perf_counter() - start) / count
    values = {}
    for metric in metrics:
        values.update(metric.compute_metrics(metric.results))
    values['seconds_per_sample'] = seconds
    return values


# ----------------------------------------------------------------------------- runs
#: Metric columns per kind of model: (row key, table label); the first is the score.
SCORES = {
    'denoise': [('psnr', 'PSNR (dB)')],
    'video': [('smooth_l1', 'smooth-L1')],
    'text': [('completion_accuracy', 'completion acc.'), ('perplexity', 'perplexity'),
             ('accuracy', 'next-token acc.')],
}


def ebt_rows(model, batches_by_split: Dict[str, List], args, kind: str) -> List[dict]:
    from ebtvision.evaluation import (LanguageModelMetric, NextFrameMetric, PSNRMetric,
                                      ThinkingMetric)
    first = dict(denoise=PSNRMetric, video=NextFrameMetric, text=LanguageModelMetric)[kind]
    metrics = [first(), ThinkingMetric()]
    model.test_cfg['energy_maps'] = False  # not needed here; it would cost a forward
    settings = [(steps, count, None) for count in args.candidates for steps in args.steps]
    if args.tolerance:
        settings.append((max(args.steps), 1, args.tolerance))
    rows = []
    for steps, count, tolerance in tqdm(settings, desc='EBT settings'):
        model.test_cfg.update(num_steps=steps, num_candidates=count, tolerance=tolerance)
        for split, batches in batches_by_split.items():
            values = evaluate(model, batches, metrics)
            levels = args.noise_levels if kind == 'denoise' else [None]
            for level in levels:
                key = '' if level is None else f'@{level:g}'
                used = values.get(f'steps_used{key}', float(steps))
                row = dict(model='EBT', split=split, noise_level=level, steps=steps,
                           candidates=count, tolerance=tolerance, steps_used=used,
                           forward_passes=count * (used + 1), backward_passes=count * used,
                           seconds_per_sample=values['seconds_per_sample'])
                row['passes'] = row['forward_passes'] + row['backward_passes']
                if kind == 'denoise':
                    row.update(psnr=values[f'psnr{key}'], noisy_psnr=values[f'noisy_psnr{key}'],
                               mean_final_energy=values.get(f'energy{key}'))
                elif kind == 'video':
                    row.update(smooth_l1=values['smooth_l1'],
                               copy_last_smooth_l1=values['copy_last_smooth_l1'],
                               mean_final_energy=values.get('energy'))
                else:
                    row.update({name: values[name] for name, _ in SCORES['text']
                                if name in values})
                rows.append(row)
    return rows


def dit_rows(args, batches_for, split: str) -> List[dict]:
    from ebtvision.apis import init_model
    from ebtvision.evaluation import PSNRMetric
    from ebtvision.models import BaseDenoiser, EnergyBasedModel
    dit = init_model(args.dit_config, args.dit_checkpoint, args.device)
    if not isinstance(dit, BaseDenoiser) or isinstance(dit, EnergyBasedModel):
        raise CurveError(f'{args.dit_config} builds a {type(dit).__name__}, not a DiTDenoiser')
    dit.eval_noise_levels = list(args.noise_levels)
    batches = batches_for(dit)
    rows = []
    for steps in tqdm(args.dit_steps, desc='DiT settings'):
        dit.test_cfg['num_steps'] = steps
        values = evaluate(dit, batches, [PSNRMetric()])
        for level in args.noise_levels:
            # Over every run of the reverse process (respace and recurse change it).
            passes = float(dit.num_passes(level))
            rows.append(dict(model='DiT', split=split, steps=steps, candidates=1, tolerance=None,
                             steps_used=passes, forward_passes=passes,
                             backward_passes=0.0, passes=passes, noise_level=level,
                             psnr=values[f'psnr@{level:g}'],
                             noisy_psnr=values[f'noisy_psnr@{level:g}'], mean_final_energy=None,
                             seconds_per_sample=values['seconds_per_sample']))
    return rows


# ----------------------------------------------------------------------------- report
def row_kind(row: dict) -> str:
    return 'denoise' if 'psnr' in row else 'video' if 'smooth_l1' in row else 'text'


def score_columns(rows: List[dict]) -> List[tuple]:
    """The metric columns the rows have; the first is the score the gains are of."""
    return [(key, label) for key, label in SCORES[row_kind(rows[0])] if key in rows[0]]


def condition(row: dict) -> tuple:
    """What a panel / baseline groups by: the data split and the noise level."""
    return row['split'], row.get('noise_level')


def condition_label(row: dict, train_level: Optional[float], several_splits: bool) -> str:
    level = row.get('noise_level')
    parts = [row['split']] if several_splits or level is None else []
    if level is not None:
        parts.append(f'{level:g} ' + ('(in dist.)' if level == train_level else '(OOD)'))
    return ', '.join(parts)


def table(rows: List[dict], train_level: Optional[float]) -> str:
    """Markdown table; gains are against the 1-step, 1-candidate EBT of the same condition."""
    columns = score_columns(rows)
    score = columns[0][0]
    fewest = min(r['steps'] for r in rows if r['model'] == 'EBT')
    base = {condition(row): row[score] for row in rows
            if row['model'] == 'EBT' and row['candidates'] == 1 and row['tolerance'] is None
            and row['steps'] == fewest}
    several_splits = len({row['split'] for row in rows}) > 1
    head = ('| model | data | steps | candidates | steps used | passes (fwd+bwd) | '
            + ' | '.join(label for _, label in columns) + ' | gain | s/sample |')
    lines = [head, '|' + '---|' * (head.count('|') - 1)]
    for row in rows:
        candidates = f"{row['candidates']}" + (f" (tol {row['tolerance']:g})"
                                               if row['tolerance'] else '')
        gain = row[score] - base.get(condition(row), float('nan'))
        values = ' | '.join(f'{row[key]:.4f}' for key, _ in columns)
        lines.append(f"| {row['model']} | {condition_label(row, train_level, several_splits)} | "
                     f"{row['steps']} | {candidates} | {row['steps_used']:.2f} | "
                     f"{row['passes']:.0f} | {values} | {gain:+.4f} | "
                     f"{row['seconds_per_sample']:.3f} |")
    return '\n'.join(lines)


def plot(rows: List[dict], path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    kind = row_kind(rows[0])
    score, label = score_columns(rows)[0]
    panels = sorted({condition(row) for row in rows},  # validation (in distribution) first
                    key=lambda c: (c[0] != 'val', c[0], c[1] is None, c[1] or 0.0))
    several_splits = len({row['split'] for row in rows}) > 1
    figure = Figure(figsize=(5.0 * len(panels), 4.0), dpi=100, layout='constrained')
    canvas = FigureCanvasAgg(figure)
    for index, panel in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        here = [row for row in rows if condition(row) == panel]
        for count in sorted({r['candidates'] for r in here if r['model'] == 'EBT'}):
            line = sorted((r for r in here if r['model'] == 'EBT' and r['candidates'] == count
                           and not r['tolerance']), key=lambda r: r['passes'])
            if not line:
                continue
            axes.plot([r['passes'] for r in line], [r[score] for r in line], marker='o',
                      label=f'EBT, {count} candidate(s)')
            for r in line:
                axes.annotate(f"{r['steps']}", (r['passes'], r[score]), fontsize=7,
                              textcoords='offset points', xytext=(3, 3))
        adaptive = [r for r in here if r['tolerance']]
        if adaptive:
            axes.scatter([r['passes'] for r in adaptive], [r[score] for r in adaptive],
                         marker='*', s=120, color='black', zorder=3,
                         label=f"EBT adaptive (tol {adaptive[0]['tolerance']:g})")
        dit = sorted((r for r in here if r['model'] == 'DiT'), key=lambda r: r['passes'])
        if dit:
            axes.plot([r['passes'] for r in dit], [r[score] for r in dit], marker='s',
                      label='DiT (reverse steps)')
        if kind != 'text':
            floor = here[0]['noisy_psnr'] if kind == 'denoise' else here[0]['copy_last_smooth_l1']
            axes.axhline(floor, linestyle='--', color='gray',
                         label='noisy input' if kind == 'denoise' else 'copy last frame')
        axes.set_xscale('log')
        # Ticks at 1-2-5 steps as plain numbers: matplotlib's minor labels overlap on
        # ranges of about one decade.
        axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f'{value:g}'))
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel('network passes per sample (forward + backward)')
        axes.set_ylabel(f'latent {label}' if kind == 'video' else label)
        title = (f'noise level {panel[1]:g}' if kind == 'denoise' else
                 'next-frame prediction' if kind == 'video' else f'split {panel[0]}')
        if several_splits and kind != 'text':
            title += f' ({panel[0]})'
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    canvas.print_png(path)


@exit_on_missing_extra
def main(argv=None) -> int:
    args = parse_args(argv)
    from ebtvision.apis import ModelLoadError, init_model, load_config
    from ebtvision.models import BaseDenoiser, EnergyBasedModel, NextFramePredictor
    from ebtvision.utils import register_all_modules
    register_all_modules()  # default scope too: wrappers like ConcatDataset build by name
    try:
        cfg = load_config(args.config, args.cfg_options)
        model = init_model(cfg, args.checkpoint, args.device)
        if not isinstance(model, EnergyBasedModel):
            raise CurveError(f'{args.config} builds a {type(model).__name__}; thinking curves '
                             'need an EBT (EBTDenoiser, EBTNextFrame or EBTLanguageModel)')
        kind = ('denoise' if isinstance(model, BaseDenoiser) else
                'video' if isinstance(model, NextFramePredictor) else 'text')
        is_denoiser = kind == 'denoise'
        if args.dit_config and not is_denoiser:
            raise CurveError('--dit-config applies to denoisers')
        if is_denoiser:
            model.eval_noise_levels = list(args.noise_levels)
        split = args.split or ('both' if kind == 'text' else 'val')
        splits = ['val', 'test'] if split == 'both' else [split]

        def batches_for(any_model, name=splits[0]):
            return load_batches(cfg, name, args.max_samples, args.batch_size, any_model)

        rows = ebt_rows(model, {name: batches_for(model, name) for name in splits}, args, kind)
        if args.dit_config:
            rows += dit_rows(args, batches_for, splits[0])
    except (CurveError, ModelLoadError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    out_dir = args.out_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0], 'thinking_curve')
    os.makedirs(out_dir, exist_ok=True)
    train_level = float(model.train_noise_level) if is_denoiser else None
    print(table(rows, train_level))
    with open(osp.join(out_dir, 'thinking_curve.json'), 'w') as file:
        json.dump(dict(config=args.config, checkpoint=args.checkpoint, splits=splits,
                       train_noise_level=train_level, rows=rows), file, indent=1)
    plot(rows, osp.join(out_dir, 'thinking_curve.png'))
    print(f'wrote {out_dir}/thinking_curve.json and thinking_curve.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
