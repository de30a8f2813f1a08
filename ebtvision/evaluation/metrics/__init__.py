"""Metrics of ebtvision, registered in ``ebtvision.registry.METRICS``."""
from .accuracy import AccuracyMetric, topk_accuracy, topk_correct
from .image_quality import BaseDenoiseMetric, LPIPSMetric, PSNRMetric, SSIMMetric
from .language import LanguageModelMetric
from .next_frame import NextFrameMetric
from .thinking import ThinkingMetric

__all__ = [
    'AccuracyMetric', 'topk_accuracy', 'topk_correct', 'BaseDenoiseMetric', 'PSNRMetric',
    'SSIMMetric', 'LPIPSMetric', 'NextFrameMetric', 'ThinkingMetric',
    'LanguageModelMetric'
]
