"""Continue a text prompt with a language model, and show how sure an EBT was of each token.

    python demo/generate_text.py CONFIG CHECKPOINT --prompt TEXT [--prompt TEXT ...]
        [--prompt-file FILE] [--num-tokens 64] [--thinking-steps S] [--num-candidates M]
        [--tolerance T] [--show-energies] [--out-json PATH] [--device cpu|cuda]

Generation is greedy, one token at a time, with the KV cache. An EBT thinks about
every new token (``--thinking-steps``, self-verification over ``--num-candidates``
random starts, adaptive stopping with ``--tolerance``); the final energy of each
generated token is its uncertainty: the summary names the tokens it was least sure of,
and ``--show-energies`` prints every token with its energy (and steps, when adaptive).
Transformer++ models generate the same way, without energies.

Example (after ``python tools/train.py configs/quickstart/ebt_text_pydoc.py``)::

    python demo/generate_text.py configs/quickstart/ebt_text_pydoc.py \\
        work_dirs/ebt_text_pydoc/iter_800.pth --prompt "The for statement"

The checkpoint is loaded weights-only (nothing in it is executed). The Python API
behind the demo: ``ebtvision.apis.TextGenerator``.
"""
import json
import os.path as osp
import sys
from typing import List

import torch
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ebtvision.apis import (ModelLoadError, TextGeneration, TextGenerator,  # noqa: E402
                            atomic_write, load_config)
from ebtvision.apis.options import cli_type, non_negative, positive_int  # noqa: E402
from ebtvision.utils import (ArgumentParser, exit_on_missing_extra,  # noqa: E402
                             register_all_modules)

#: Tokens of highest energy named in the summary.
LEAST_SURE = 5


class DemoError(RuntimeError):
    """A problem with the inputs, reported as ``error: ...`` without a traceback."""


def parse_args(argv=None):
    parser = ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog='Without a trained model: python tools/train.py '
        'configs/quickstart/ebt_text_pydoc.py (about 5 minutes on a 2-core CPU).')
    parser.add_argument('config', help='language model config (EBTLanguageModel or '
                        'TransformerPPLanguageModel)')
    parser.add_argument('checkpoint', help='checkpoint, loaded weights-only')
    parser.add_argument('--prompt', action='append', default=[],
                        help='text to continue (repeat for several)')
    parser.add_argument('--prompt-file', help='a UTF-8 text file to continue')
    parser.add_argument('--num-tokens', type=cli_type(positive_int), default=64,
                        help='tokens to generate')
    parser.add_argument('--thinking-steps', type=cli_type(positive_int), help='EBT steps per token')
    parser.add_argument('--num-candidates', type=cli_type(positive_int), default=1,
                        help='EBT self-verification: random starts per token')
    parser.add_argument('--tolerance', type=cli_type(non_negative),
                        help='EBT adaptive stopping tolerance')
    parser.add_argument('--show-energies', action='store_true',
                        help='print every generated token with its energy')
    parser.add_argument('--out-json', help='write prompts, continuations and energies here')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def read_prompts(args) -> List[str]:
    prompts = list(args.prompt)
    if args.prompt_file:
        try:
            with open(args.prompt_file, encoding='utf-8') as file:
                prompts.append(file.read())
        except FileNotFoundError:
            raise DemoError(f'--prompt-file {args.prompt_file} does not exist') from None
        except UnicodeDecodeError as error:
            raise DemoError(f'--prompt-file {args.prompt_file} is not UTF-8 text ({error})'
                            ) from None
    if not prompts:
        raise DemoError('give a prompt: --prompt TEXT or --prompt-file FILE')
    if any(not prompt for prompt in prompts):
        raise DemoError('a prompt is empty: the model needs at least one token to continue')
    return prompts


def check_options(generator: TextGenerator, args) -> dict:
    """Thinking options for the generator; refused for a model that does not think."""
    if args.num_tokens < 1:
        raise DemoError(f'--num-tokens must be >= 1, got {args.num_tokens}')
    asked = [name for name, value in (('--thinking-steps', args.thinking_steps),
                                      ('--tolerance', args.tolerance))
             if value is not None] + (['--num-candidates'] if args.num_candidates != 1 else [])
    if asked and not generator.is_ebt:
        raise DemoError(f'{" ".join(asked)} apply to EBTs; {type(generator.model).__name__} '
                        'predicts each token in one pass')
    if args.thinking_steps is not None and args.thinking_steps < 1:
        raise DemoError(f'--thinking-steps must be >= 1, got {args.thinking_steps}')
    if args.num_candidates < 1:
        raise DemoError(f'--num-candidates must be >= 1, got {args.num_candidates}')
    if not generator.is_ebt:
        return {}
    return dict(num_steps=args.thinking_steps, num_candidates=args.num_candidates,
                tolerance=args.tolerance)


def load_model(cfg: Config, checkpoint: str, device: str) -> TextGenerator:
    """The generator: the config's language model, checkpoint loaded weights-only."""
    try:
        TextGenerator.model_class(cfg)
    except ModelLoadError as error:
        raise DemoError(str(error)) from None
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise DemoError('--device cuda but no CUDA device is available; use --device cpu')
    try:
        return TextGenerator(cfg, checkpoint, device)
    except ModelLoadError as error:
        raise DemoError(str(error)) from None


def describe(result: TextGeneration, show_energies: bool) -> dict:
    """Print one continuation; return its record."""
    tokens = result.tokens
    print(f'--- prompt: {result.prompt!r}')
    print(f'--- continuation: {result.continuation!r}')
    record = dict(prompt=result.prompt, continuation=result.continuation, tokens=tokens)
    if result.energies is None:
        return record
    energies, steps, pieces = result.energies, result.steps_used, result.token_texts
    record.update(energies=energies, token_texts=pieces, steps_used=steps)
    mean = sum(energies) / len(energies)
    order = sorted(range(len(energies)), key=lambda i: energies[i], reverse=True)
    least_sure = ', '.join(f'{pieces[i]!r} @{i} ({energies[i]:.3f})'
                           for i in order[:LEAST_SURE])
    print(f'    energy: mean {mean:.3f}, min {min(energies):.3f}, max {max(energies):.3f}; '
          f'least sure (highest energy): {least_sure}')
    if steps is not None:
        print(f'    thinking steps used: mean {sum(steps) / len(steps):.2f}')
    if show_energies:
        print(f'    {"#":>4}  {"token":<10}{"energy":>9}' + ('  steps' if steps else ''))
        for i, (piece, energy) in enumerate(zip(pieces, energies)):
            extra = f'  {steps[i]:5.1f}' if steps else ''
            print(f'    {i:>4}  {piece!r:<10}{energy:9.3f}{extra}')
    return record


@exit_on_missing_extra
def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules()
    try:
        if not osp.isfile(args.config):
            raise DemoError(f'config {args.config} does not exist')
        prompts = read_prompts(args)
        try:
            cfg = load_config(args.config, args.cfg_options)
        except ModelLoadError as error:
            raise DemoError(str(error)) from None
        generator = load_model(cfg, args.checkpoint, args.device)
        options = check_options(generator, args)
    except DemoError as error:
        sys.exit(f'error: {error}')
    trained = generator.trained_length
    how = (f'{options["num_steps"] or generator.default_steps}'
           f' thinking step(s), {args.num_candidates} candidate(s) per token'
           + (f', adaptive (tolerance {args.tolerance})' if args.tolerance else '')
           if options else 'one forward pass per token')
    print(f'{type(generator.model).__name__} from {args.config} ({how}), {args.num_tokens} '
          'new tokens')
    records = []
    for prompt in prompts:
        result = generator(prompt, args.num_tokens, **options)
        if trained and result.prompt_length + args.num_tokens > trained:
            print(f'note: {result.prompt_length} prompt + {args.num_tokens} new tokens exceed '
                  f'the {trained} the model was trained on (positions extrapolate)')
        record = describe(result, args.show_energies)
        record['seconds'] = result.seconds
        print(f'    {args.num_tokens} tokens in {result.seconds:.2f} s')
        records.append(record)
    if args.out_json:
        atomic_write(json.dumps(dict(config=args.config, checkpoint=args.checkpoint,
                                     options=options, results=records), indent=2).encode(),
                     args.out_json)
        print(f'wrote {args.out_json}')


if __name__ == '__main__':
    main()
