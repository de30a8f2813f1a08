"""Packing token sequences for the language models."""
import torch

from ebtvision.registry import TRANSFORMS
from ebtvision.structures import TextDataSample


@TRANSFORMS.register_module()
class PackTextInputs:
    """Pad (or refuse) ``tokens`` to ``seq_len + 1`` ids: inputs are the first ``seq_len``,
    targets the last ``seq_len``.

    Required keys: ``tokens`` (list of ids), ``seq_len``, ``pad_id``. Optional keys kept
    as metainfo: ``sample_idx``, ``prompt_length``, ``completion``, ``prefix``.
    """

    META_KEYS = ('sample_idx', 'prompt_length', 'completion', 'prefix')

    def __call__(self, results: dict) -> dict:
        tokens, length = list(results['tokens']), int(results['seq_len']) + 1
        if len(tokens) > length:
            raise ValueError(f'sample {results.get("sample_idx")} has {len(tokens)} tokens, '
                             f'more than seq_len + 1 = {length}')
        if len(tokens) < 2:
            raise ValueError(f'sample {results.get("sample_idx")} needs at least 2 tokens')
        padded = tokens + [int(results['pad_id'])] * (length - len(tokens))
        metainfo = {key: results[key] for key in self.META_KEYS if key in results}
        metainfo['num_tokens'] = len(tokens)
        return dict(inputs=torch.tensor(padded, dtype=torch.long),
                    data_samples=TextDataSample(metainfo=metainfo))
