"""Convert a checkpoint trained with the reference implementation into ebtvision's.

    python tools/model_converters/from_reference.py REF_CKPT OUT.pth --family FAMILY
        [--config CONFIG] [--force]

REF_CKPT is a Lightning checkpoint written by the reference code (github
alexiglad/EBT) or a bare state dict. It is read without running code from it: tensors
load as usual and every other pickled object (hyper-parameter namespaces, callbacks)
becomes an inert record. Its weights are renamed with the same mapping
``tools/benchmark/parity.py`` proves equal (``ebtvision/reference``), and OUT.pth holds
``state_dict`` plus ``meta`` (source, family). ``tools/test.py CONFIG OUT.pth`` and the
demos load it.

With ``--config`` the converted weights are loaded into that config's model first:
every weight must fit (names and shapes), and weights the config's model has but the
checkpoint lacks are listed (a frozen encoder, e.g. the SD-VAE, is built from its own
pretrained weights and is expected there). OUT is never overwritten unless ``--force``.
"""
import io
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ebtvision.fileio import (CheckpointLoadError, atomic_write,  # noqa: E402
                              load_foreign_checkpoint)
from ebtvision.reference import FAMILIES, MappingError, convert_reference_checkpoint  # noqa: E402
from ebtvision.utils import ArgumentParser, exit_with_error  # noqa: E402

# Weights our models hold that a reference checkpoint never has (frozen encoders).
OWN_WEIGHTS = ('encoder.', )


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help="the reference's checkpoint (.ckpt / .pth)")
    parser.add_argument('out', help='where to write the converted checkpoint')
    parser.add_argument('--family', required=True, choices=sorted(FAMILIES),
                        help='which model the checkpoint holds')
    parser.add_argument('--config', help='check the weights load into this config\'s model')
    parser.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
    return parser.parse_args(argv)


def plain_hparams(checkpoint) -> dict:
    """The checkpoint's hyper-parameters as plain values (for the record in ``meta``)."""
    hparams = checkpoint.get('hyper_parameters') if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict):
        return {}
    return {str(k): v for k, v in hparams.items()
            if isinstance(v, (int, float, str, bool, type(None)))}


def check_against_config(state_dict: dict, config: str) -> None:
    from ebtvision.registry import MODELS
    from ebtvision.utils import read_config, register_all_modules
    register_all_modules()
    cfg = read_config(config)
    try:
        model = MODELS.build(cfg.model)
    except Exception as error:  # noqa: BLE001  the config's own problem, one line
        exit_with_error(f'--config {config}: the model does not build: {error}')
    own = model.state_dict()
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [f'{k} {tuple(v.shape)} vs {tuple(own[k].shape)}'
                  for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    if unexpected or mismatched:
        problems = unexpected[:3] + mismatched[:3]
        exit_with_error(f'--config {config}: the converted weights do not fit its model '
                        f'({len(unexpected)} unknown, {len(mismatched)} of another shape: '
                        f'{"; ".join(problems)}); check --family and the config\'s options')
    missing = sorted(k for k in set(own) - set(state_dict) if not k.startswith(OWN_WEIGHTS))
    if missing:
        exit_with_error(f'--config {config}: {len(missing)} weight(s) of its model are not '
                        f'in the checkpoint: {", ".join(missing[:5])}')
    print(f'checked: every weight fits {config}')


def main(argv=None) -> None:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.force:
        exit_with_error(f'{args.out} exists; pass --force to overwrite it')
    try:
        checkpoint = load_foreign_checkpoint(args.checkpoint)
        state_dict = convert_reference_checkpoint(checkpoint, args.family)
    except FileNotFoundError as error:
        exit_with_error(str(error))
    except (CheckpointLoadError, MappingError) as error:
        exit_with_error(f'{args.checkpoint}: {error}')
    if args.config:
        check_against_config(state_dict, args.config)
    meta = dict(converted_from=osp.basename(args.checkpoint), family=args.family,
                reference_hparams=plain_hparams(checkpoint))
    buffer = io.BytesIO()
    torch.save(dict(state_dict=state_dict, meta=meta), buffer)
    atomic_write(buffer.getvalue(), args.out)
    print(f'wrote {args.out}: {len(state_dict)} tensors of family {args.family}')


if __name__ == '__main__':
    main()
