"""Numerical parity of every model family with the reference implementation.

For each family, the reference's model (github alexiglad/EBT) is built with small
settings and random weights (zero-initialised tensors re-drawn so no gradient is
trivially zero), its weights are mapped into our model with the same mapping
``tools/model_converters/from_reference.py`` uses, and both compute, in float64 and
from the same inputs, the training loss and every parameter gradient; the denoisers
also compare their evaluation protocol's output on the same noisy batch. Random draws
(noise, candidate starts) are made equal (every draw of n values is the first n of one
stream), and random integer draws are fixed.

DIR holds the reference's ``model/`` and ``inference/`` folders, e.g.::

    git -C EBT archive HEAD model inference | tar -x -C /tmp/ebt_ref
    python tools/benchmark/parity.py --reference-repo /tmp/ebt_ref

Its Lightning, torchmetrics and diffusers imports are replaced by stubs; timm is needed.
The last line reads ``parity: K/N families match``; a family matches when the loss, the
largest relative gradient difference and the evaluation output all agree to 1e-9.
"""
import importlib
import os.path as osp
import sys
import traceback
import warnings

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

FAMILY_MODULES = ('image_ebt', 'image_dit', 'video', 'text')


def family_runs():
    runs = []
    for name in FAMILY_MODULES:
        module = importlib.import_module(f'parity_families.{name}')
        runs += module.FAMILY_RUNS
    return runs


def parse_args(argv=None):
    from ebtvision.utils import ArgumentParser
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reference-repo', required=True,
                        help="directory holding the reference's model/ and inference/")
    parser.add_argument('--families', nargs='+', default=None,
                        help='run only families whose name contains one of these words')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def fmt(value) -> str:
    return '-' if value is None else f'{value:.1e}'


def main(argv=None) -> int:
    args = parse_args(argv)
    from parity_families.common import TOLERANCE, import_reference
    from ebtvision.utils import exit_with_error, require
    try:
        import_reference(args.reference_repo)
        # The reference's image models are built from timm parts (the [probe] extra).
        require('timm', "--reference-repo (the authors' image models)")
    except (FileNotFoundError, ImportError) as error:
        exit_with_error(str(error))
    runs = [(name, run) for name, run in family_runs()
            if not args.families or any(word in name for word in args.families)]
    torch.set_default_dtype(torch.float64)
    # The reference's deprecated-API notices would interleave with the table.
    warnings.filterwarnings('ignore', category=FutureWarning)
    print(f'float64, seed {args.seed}, tolerance {TOLERANCE:g} (relative)')
    header = f'{"family":<26}{"loss ours":>14}{"loss ref":>14}{"rel":>9}{"grads":>7}' \
             f'{"grad rel":>10}{"eval rel":>10}  match'
    print(header)
    print('-' * len(header))
    matched, notes = 0, []
    for name, run in runs:
        try:
            result = run(args.seed)
        except Exception as error:  # one family failing must not hide the others
            traceback.print_exc()
            print(f'{name:<26}failed: {type(error).__name__}: {error}')
            continue
        ok = result.matched
        matched += ok
        print(f'{result.family:<26}{result.loss_ours:>14.8f}{result.loss_ref:>14.8f}'
              f'{fmt(result.loss_rel):>9}{result.num_grads:>7}{fmt(result.grad_rel):>10}'
              f'{fmt(result.eval_rel):>10}  {"yes" if ok else "NO"}')
        if result.why:
            notes.append(f'{result.family}: {result.why}')
    for note in notes:
        print(f'note: {note}')
    print(f'parity: {matched}/{len(runs)} families match')
    return 0 if matched == len(runs) else 1


if __name__ == '__main__':
    sys.exit(main())
