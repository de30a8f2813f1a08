"""Curves and training time from MMEngine's scalar logs, as OpenMMLab's analyze_logs.

    python tools/analysis/analyze_logs.py plot_curve LOG [LOG ...] [--keys loss ...]
        [--legend NAME ...] [--title T] [--out FILE.png]
    python tools/analysis/analyze_logs.py cal_train_time LOG [LOG ...] [--include-outliers]

LOG is a run's ``vis_data/scalars.json`` (one JSON record per line), or a work dir / run
dir: its newest ``vis_data/scalars.json`` is read. Training records (those with ``iter``)
hold ``loss``, ``lr``, ``grad_norm``, ``time``, ``data_time`` and what the model logs (an
EBT: ``alpha``, ``energy_first_step``, ``final_step_mse``, ``noisy_mse``); validation
records hold the metrics (``denoise/psnr@0.1``, ``thinking/energy@0.1``,
``nextframe/smooth_l1``...). MMEngine stamps validation records with the epoch (0 in runs
by iterations), so a validation record is placed at the last training iteration logged
before it: exact when the logger's interval divides the validation interval, as in every
config here.

``plot_curve`` draws one panel per key, a line per log, and prints what it read per log
and key: the number of points, the iterations and the first and last values. A key
absent from a log ends in one ``error:`` line listing the keys that log has.
``cal_train_time`` prints the seconds per iteration (MMEngine's ``time``, a running mean
over the logger's window) of each log: mean, standard deviation, slowest and fastest
logged iteration, and the data-loading share.
"""
import difflib
import glob
import io
import json
import math
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ebtvision.fileio import atomic_write  # noqa: E402
from ebtvision.utils import ArgumentParser, exit_with_error  # noqa: E402


class ScalarLog(NamedTuple):
    """One run's records, split by kind; each ``(iteration, {key: value})``."""
    path: str
    train: List[Tuple[int, Dict[str, float]]]
    val: List[Tuple[int, Dict[str, float]]]

    def keys(self) -> List[str]:
        return sorted({key for _, record in self.train + self.val for key in record})

    def series(self, key: str) -> Tuple[List[int], List[float]]:
        """Iterations and values of ``key``: from the training records when they have
        it (``time`` is in both), else from the validation records."""
        records = self.train if any(key in r for _, r in self.train) else self.val
        points = [(it, record[key]) for it, record in records if key in record]
        return [it for it, _ in points], [value for _, value in points]


def find_scalars(path: str) -> str:
    """``path`` itself, or the newest ``vis_data/scalars.json`` under a work / run dir."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        exit_with_error(f'{path} does not exist')
    found = glob.glob(osp.join(path, 'vis_data', 'scalars.json')) + glob.glob(
        osp.join(path, '*', 'vis_data', 'scalars.json'))
    if not found:
        exit_with_error(f'{path} holds no vis_data/scalars.json (nor */vis_data/...)')
    return max(found, key=osp.getmtime)


def load_log(path: str) -> ScalarLog:
    """Read a ``scalars.json``; a line that is not a JSON object ends in one error line."""
    path = find_scalars(path)
    train, val, last_iter = [], [], 0
    with open(path) as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                exit_with_error(f'{path}:{number} is not a JSON record ({error.msg}); '
                                'expected MMEngine\'s vis_data/scalars.json')
            if not isinstance(record, dict):
                exit_with_error(f'{path}:{number} is not a JSON object')
            values = {key: value for key, value in record.items()
                      if key not in ('iter', 'step', 'epoch') and isinstance(value, (int, float))}
            if 'iter' in record:
                last_iter = int(record['iter'])
                train.append((last_iter, values))
            else:  # validation: its `step` is the epoch in runs by iterations
                val.append((max(last_iter, int(record.get('step', 0))), values))
    if not train and not val:
        exit_with_error(f'{path} holds no records')
    return ScalarLog(path, train, val)


def check_keys(logs: Sequence[ScalarLog], keys: Sequence[str]) -> None:
    for log in logs:
        have = log.keys()
        for key in keys:
            if key not in have:
                close = difflib.get_close_matches(key, have, n=3)
                hint = f' (did you mean {", ".join(close)}?)' if close else ''
                exit_with_error(f'key {key!r} is not in {log.path}{hint}; its keys: '
                                f'{", ".join(have)}')


def plot_curve(args) -> None:
    logs = [load_log(path) for path in args.logs]
    check_keys(logs, args.keys)
    if args.legend is not None and len(args.legend) != len(logs):
        exit_with_error(f'--legend: {len(args.legend)} names for {len(logs)} logs')
    legends = args.legend or [osp.relpath(log.path) for log in logs]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # A private Figure: no pyplot state, no display needed.
    figure = Figure(figsize=(7, 2.6 * len(args.keys)), dpi=100)
    FigureCanvasAgg(figure)
    for index, key in enumerate(args.keys):
        # One x axis for all panels: validation points line up with training ones.
        axes = figure.add_subplot(len(args.keys), 1, index + 1,
                                  sharex=figure.axes[0] if figure.axes else None)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        for log, legend in zip(logs, legends):
            iters, values = log.series(key)
            # A few validation points need markers to be seen.
            axes.plot(iters, values, marker='o' if len(iters) <= 20 else None,
                      markersize=3, label=legend)
            print(f'{legend}: {key}: {len(iters)} point{"s" * (len(iters) != 1)}, '
                  f'iter {iters[0]}..{iters[-1]}, '
                  f'first {values[0]:.6g}, last {values[-1]:.6g}')
        axes.set_ylabel(key)
        axes.grid(alpha=0.3)
        if len(logs) > 1:
            axes.legend(fontsize='small')
    axes.set_xlabel('iteration')
    if args.title:
        figure.axes[0].set_title(args.title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=osp.splitext(args.out)[1][1:] or 'png')
    atomic_write(buffer.getvalue(), args.out)
    print(f'saved {args.out}')


def cal_train_time(args) -> None:
    for path in args.logs:
        log = load_log(path)
        timed = [(it, record['time']) for it, record in log.train if 'time' in record]
        if not args.include_outliers:
            timed = timed[1:]  # the first window holds the start-up (data workers, caches)
        if not timed:
            exit_with_error(f'{log.path} has no training record with a time'
                            + ('' if args.include_outliers else
                               ' after the first (try --include-outliers)'))
        times = [t for _, t in timed]
        mean = sum(times) / len(times)
        std = math.sqrt(sum((t - mean) ** 2 for t in times) / len(times))
        slowest, fastest = max(timed, key=lambda p: p[1]), min(timed, key=lambda p: p[1])
        data = [record['data_time'] for it, record in log.train if 'data_time' in record]
        print(f'-----Analyze train time of {log.path}-----')
        print(f'logged iterations: {len(times)} (iter {timed[0][0]}..{timed[-1][0]})')
        print(f'slowest iter: {slowest[0]}, time: {slowest[1]:.4f} s/iter')
        print(f'fastest iter: {fastest[0]}, time: {fastest[1]:.4f} s/iter')
        print(f'time std over iters: {std:.4f}')
        print(f'average iter time: {mean:.4f} s/iter')
        if data:
            share = sum(data) / len(data) / mean if mean > 0 else float('nan')
            print(f'average data time: {sum(data) / len(data):.4f} s/iter '
                  f'({100 * share:.1f} % of an iteration)')


def parse_args(argv=None):
    parser = ArgumentParser(description='Analyze MMEngine scalar logs (vis_data/scalars.json)')
    commands = parser.add_subparsers(dest='command', required=True,
                                     parser_class=ArgumentParser)
    curve = commands.add_parser('plot_curve', help='plot scalars against the iteration')
    curve.add_argument('logs', nargs='+', metavar='LOG',
                       help='scalars.json files, or work / run dirs holding one')
    curve.add_argument('--keys', nargs='+', default=['loss'],
                       help='scalars to plot (default: loss), e.g. loss alpha '
                       'denoise/psnr@0.1 thinking/energy@0.1')
    curve.add_argument('--legend', nargs='+', help='a name per log (default: its path)')
    curve.add_argument('--title', help='figure title')
    curve.add_argument('--out', default='curves.png', metavar='FILE.png',
                       help='image to write (default: curves.png; .pdf and .svg work too)')
    timing = commands.add_parser('cal_train_time', help='seconds per training iteration')
    timing.add_argument('logs', nargs='+', metavar='LOG',
                        help='scalars.json files, or work / run dirs holding one')
    timing.add_argument('--include-outliers', action='store_true',
                        help='count the first logged window (start-up) too')
    args = parser.parse_args(argv)
    if args.command == 'plot_curve' and osp.splitext(args.out)[1].lower() not in (
            '.png', '.pdf', '.svg', '.jpg'):
        parser.error(f'--out: {args.out} must end with .png, .pdf, .svg or .jpg')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    {'plot_curve': plot_curve, 'cal_train_time': cal_train_time}[args.command](args)


if __name__ == '__main__':
    main()
