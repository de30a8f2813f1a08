"""Renaming the reference implementation's parameters into ours.

The reference (github alexiglad/EBT) and ebtvision hold the same tensors under other
names, sometimes split where ours are fused (e.g. separate query / key / value weights).
A family's mapping is a :class:`StateDictMapping`: renames (regular expressions) and
concatenations. It converts a checkpoint's weights, and, applied to a dict of
gradients keyed by the reference's names, it converts those too (every rule is a
rename or a concatenation, both linear), which is how ``tools/benchmark/parity.py``
compares gradients.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch

TensorDict = Dict[str, torch.Tensor]


class MappingError(ValueError):
    """A state dict does not fit a family's mapping (unknown or missing keys)."""


@dataclass
class StateDictMapping:
    """How one family's reference parameters become ours.

    Args:
        renames: ``(pattern, replacement)`` pairs tried in order on every reference key
            (``re.fullmatch``; replacement as in ``re.sub``). The first match wins.
        concats: ``(patterns, replacement, dim)``: reference keys matching
            ``patterns[0]``, ``patterns[1]``, ... (with the same groups) are concatenated
            along ``dim`` into one key of ours. Tried before ``renames``.
        ignore: Patterns of reference keys that have no counterpart (frozen encoders,
            fixed buffers recomputed by our modules).
    """
    renames: Sequence[Tuple[str, str]] = ()
    concats: Sequence[Tuple[Sequence[str], str, int]] = ()
    ignore: Sequence[str] = field(default_factory=tuple)

    def convert(self, reference: TensorDict) -> TensorDict:
        """Our state dict (or gradient dict) from the reference's."""
        ours: TensorDict = {}
        used = set()
        for patterns, replacement, dim in self.concats:
            groups: Dict[tuple, List[Tuple[int, str]]] = {}
            for key in reference:
                for index, pattern in enumerate(patterns):
                    match = re.fullmatch(pattern, key)
                    if match:
                        groups.setdefault(match.groups(), []).append((index, key))
            for group_key, parts in groups.items():
                if sorted(index for index, _ in parts) != list(range(len(patterns))):
                    found = ', '.join(key for _, key in parts)
                    raise MappingError(f'incomplete group for {replacement!r}: {found}')
                parts.sort()
                target = re.fullmatch(patterns[0], parts[0][1]).expand(replacement)
                ours[target] = torch.cat([reference[key] for _, key in parts], dim=dim)
                used.update(key for _, key in parts)
        unknown = []
        for key, value in reference.items():
            if key in used or any(re.fullmatch(p, key) for p in self.ignore):
                continue
            for pattern, replacement in self.renames:
                match = re.fullmatch(pattern, key)
                if match:
                    ours[match.expand(replacement)] = value
                    break
            else:
                unknown.append(key)
        if unknown:
            shown = ', '.join(unknown[:5]) + (f' (+{len(unknown) - 5} more)'
                                              if len(unknown) > 5 else '')
            raise MappingError(f'{len(unknown)} reference key(s) have no counterpart: {shown}')
        return ours
