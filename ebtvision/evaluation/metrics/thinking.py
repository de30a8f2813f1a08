"""How an EBT thought: mean final energy and steps used, per noise level (or per clip).

Reads what EBT predictions carry: for denoisers the per-level dicts ``energies``
(``(S + 1,)`` along the kept candidate's trajectory) and ``steps_used``, reported as
``thinking/energy@<level>`` and ``thinking/steps_used@<level>``; for next-frame models
``steps_used`` (adaptive stopping), reported as ``thinking/steps_used`` (their energy is
``NextFrameMetric``'s, which leaves out padded frames). Models without energies (DiT,
Transformer++) report nothing.
"""
from collections import defaultdict
from typing import Dict, List, Sequence

import torch
from mmengine.evaluator import BaseMetric

from ebtvision.registry import METRICS


def _as_dict(sample) -> dict:
    return sample.to_dict() if hasattr(sample, 'to_dict') else dict(sample)


@METRICS.register_module()
class ThinkingMetric(BaseMetric):
    """Mean final energy and mean thinking steps used, per noise level for denoisers."""

    default_prefix = 'thinking'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            sample = _as_dict(sample)
            energies, steps = sample.get('energies'), sample.get('steps_used')
            values: Dict[str, float] = {}
            if isinstance(energies, dict):  # denoiser: per noise level
                for level, trajectory in energies.items():
                    values[f'energy@{level}'] = float(torch.as_tensor(trajectory)[-1])
                for level, used in (steps or {}).items():
                    values[f'steps_used@{level}'] = float(used)
            elif steps is not None:  # next-frame with adaptive stopping
                values['steps_used'] = float(steps)
            self.results.append(values)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        totals, counts = defaultdict(float), defaultdict(int)
        for values in results:
            for key, value in values.items():
                totals[key] += value
                counts[key] += 1
        return {key: totals[key] / counts[key] for key in sorted(totals)}
