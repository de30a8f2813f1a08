"""Make a training checkpoint ready to share, as OpenMMLab's publish_model:
python tools/model_converters/publish_model.py IN.pth OUT.pth [--force].

Keeps what a user of the model needs, ``state_dict`` and ``meta`` (``--save-keys`` to
choose), and drops the resume state: optimizer, parameter schedulers, message hub, RNG
states, the EMA copy (``EMAHook`` already put the averaged weights in ``state_dict``).
The result is written to ``OUT-<sha256[:8]>.pth``, the first 8 hex digits of the SHA-256
of the written bytes, as OpenMMLab names published models (``sha256sum`` checks a
download against the name). The input is loaded weights-only (nothing in it runs); the
output is written atomically and never replaces an existing file unless ``--force``.
"""
import hashlib
import io
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ebtvision.fileio import (CheckpointLoadError, atomic_write,  # noqa: E402
                              load_checkpoint_weights_only)
from ebtvision.utils import ArgumentParser, exit_with_error  # noqa: E402


def parse_args(argv=None):
    parser = ArgumentParser(description='Publish a checkpoint: weights and meta only, the '
                            'SHA-256 prefix in the file name')
    parser.add_argument('in_file', help='training checkpoint (loaded weights-only)')
    parser.add_argument('out_file', help='OUT.pth: the file written is OUT-<sha256[:8]>.pth')
    parser.add_argument('--save-keys', nargs='+', default=['meta', 'state_dict'],
                        metavar='KEY', help='checkpoint keys to keep (default: meta '
                        'state_dict)')
    parser.add_argument('--force', action='store_true',
                        help='replace OUT-<hash>.pth when it exists')
    args = parser.parse_args(argv)
    if not args.out_file.endswith('.pth'):
        parser.error(f'out_file {args.out_file} must end with .pth')
    if 'state_dict' not in args.save_keys:
        parser.error('--save-keys must keep state_dict (the weights)')
    return args


def publish(in_file: str, out_file: str, save_keys=('meta', 'state_dict'),
            force: bool = False) -> str:
    """Write the published checkpoint; returns its path ``OUT-<hash>.pth``.

    Raises:
        FileNotFoundError, CheckpointLoadError: The input is missing or does not load
            weights-only.
        ValueError: The input holds no ``state_dict``.
        FileExistsError: The output exists and ``force`` is off.
    """
    import torch
    checkpoint = load_checkpoint_weights_only(in_file, map_location='cpu')
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise ValueError(f'{in_file} holds no state_dict (keys: '
                         f'{sorted(checkpoint) if isinstance(checkpoint, dict) else "none"})')
    kept = {key: checkpoint[key] for key in save_keys if key in checkpoint}
    buffer = io.BytesIO()
    torch.save(kept, buffer)
    data = buffer.getvalue()
    # The hash names the bytes written, so it is taken from them, not from the tensors.
    digest = hashlib.sha256(data).hexdigest()
    final = f'{out_file[:-len(".pth")]}-{digest[:8]}.pth'
    if osp.exists(final) and not force:
        raise FileExistsError(f'{final} exists; pass --force to replace it')
    atomic_write(data, final)
    dropped = sorted(set(checkpoint) - set(kept))
    print(f'published {final}: {len(kept["state_dict"])} tensors, {len(data) / 2**20:.2f} MiB '
          f'(sha256 {digest}); dropped: {", ".join(dropped) or "nothing"}')
    return final


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        publish(args.in_file, args.out_file, args.save_keys, args.force)
    except (FileNotFoundError, FileExistsError, ValueError, CheckpointLoadError) as error:
        exit_with_error(str(error))


if __name__ == '__main__':
    main()
