"""Dyck languages: balanced bracket sequences with k bracket types, as a completion task.

A sample is ``prefix=closing``: ``prefix`` is the start of a balanced sequence that
leaves some brackets open, and ``closing`` closes them in the right order (the BigBench
"dyck_languages" task). Length and nesting depth are controlled, so a test set with
longer or deeper prefixes than training is out of distribution.
"""
from typing import List, Optional, Tuple

import numpy as np
from mmengine.dataset import BaseDataset

from ebtvision.registry import DATASETS
from ..transforms.text import PackTextInputs
from .tokenizers import ByteTokenizer

#: Opening and closing characters of the bracket types, in order.
BRACKETS = ('()', '[]', '{}', '<>')
#: Separates the prefix from its completion.
SEPARATOR = '='


def dyck_prefix(rng: np.random.Generator, num_types: int, length: int,
                max_depth: int) -> Tuple[str, str]:
    """A random prefix of ``length`` brackets (depth <= ``max_depth``, >= 1 open at the end)
    and the closing sequence that balances it."""
    if not 1 <= num_types <= len(BRACKETS):
        raise ValueError(f'num_types must be in 1..{len(BRACKETS)}, got {num_types}')
    if length < 1 or max_depth < 1:
        raise ValueError(f'length and max_depth must be >= 1, got {length}, {max_depth}')
    if max_depth == 1 and length % 2 == 0:
        raise ValueError(f'with max_depth 1 a prefix of even length {length} is always '
                         'balanced; nothing would be left to complete')
    for _ in range(1000):  # redraw the rare prefixes that end balanced
        stack: List[int] = []
        chars = []
        for _ in range(length):
            if stack and (len(stack) >= max_depth or rng.random() < 0.5):
                chars.append(BRACKETS[stack.pop()][1])
            else:
                kind = int(rng.integers(num_types))
                stack.append(kind)
                chars.append(BRACKETS[kind][0])
        if stack:
            closing = ''.join(BRACKETS[kind][1] for kind in reversed(stack))
            return ''.join(chars), closing
    raise RuntimeError(f'no prefix of length {length} with depth <= {max_depth} stays open')


def is_balanced(text: str) -> bool:
    """Whether ``text`` (brackets only) is a balanced Dyck word."""
    closer_of = {pair[0]: pair[1] for pair in BRACKETS}
    stack = []
    for char in text:
        if char in closer_of:
            stack.append(closer_of[char])
        elif not stack or stack.pop() != char:
            return False
    return not stack


def max_depth_of(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += 1 if char in '([{<' else -1
        deepest = max(deepest, depth)
    return deepest


@DATASETS.register_module()
class DyckDataset(BaseDataset):
    """Generated Dyck completion samples, packed to a fixed number of tokens.

    Each sample is the byte tokens of ``prefix=closing``, padded to ``seq_len + 1`` tokens
    (inputs and shifted targets). ``prompt_length`` (tokens up to and including ``=``)
    and the ``completion`` string are kept for completion accuracy.

    Args:
        num_samples: Samples generated (deterministic from ``seed``).
        num_types: Bracket types k (1-4).
        length: ``(min, max)`` prefix length in brackets.
        max_depth: Deepest nesting of a prefix.
        seq_len: Tokens per sample fed to the model (longer samples are refused).
        seed: Generator seed; use different seeds for train and test sets.
        pipeline: Defaults to ``[PackTextInputs]``.
    """

    METAINFO = dict(task='dyck')

    def __init__(self, num_samples: int = 1000, num_types: int = 2, length=(4, 16),
                 max_depth: int = 4, seq_len: int = 48, seed: int = 0,
                 pipeline: Optional[list] = None, **kwargs) -> None:
        low, high = length
        if not 1 <= low <= high:
            raise ValueError(f'length must be (min, max) with 1 <= min <= max, got {length}')
        # A prefix of n brackets needs at most n closing ones, plus the separator.
        if 2 * high + 1 > seq_len + 1:
            raise ValueError(f'seq_len {seq_len} is too short for prefixes of {high} '
                             f'brackets (needs {2 * high})')
        self.num_samples, self.num_types = num_samples, num_types
        self.length, self.max_depth = (low, high), max_depth
        self.seq_len, self.seed = seq_len, seed
        self.tokenizer = ByteTokenizer()
        super().__init__(pipeline=pipeline or [PackTextInputs()],
                         serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        rng = np.random.default_rng(self.seed)
        samples = []
        for index in range(self.num_samples):
            length = int(rng.integers(self.length[0], self.length[1] + 1))
            prefix, closing = dyck_prefix(rng, self.num_types, length, self.max_depth)
            prompt = self.tokenizer.encode(prefix + SEPARATOR)
            tokens = prompt + self.tokenizer.encode(closing)
            samples.append(dict(tokens=tokens, seq_len=self.seq_len,
                                pad_id=self.tokenizer.pad_id, prompt_length=len(prompt),
                                prefix=prefix, completion=closing, sample_idx=index))
        return samples
