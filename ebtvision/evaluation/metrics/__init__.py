"""Metrics of ebtvision, registered in ``ebtvision.registry.METRICS``."""
from .image_quality import BaseDenoiseMetric, LPIPSMetric, PSNRMetric, SSIMMetric
from .next_frame import NextFrameMetric

__all__ = ['BaseDenoiseMetric', 'PSNRMetric', 'SSIMMetric', 'LPIPSMetric', 'NextFrameMetric']
