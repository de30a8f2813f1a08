"""Metrics of ebtvision, registered in ``ebtvision.registry.METRICS``."""
from .image_quality import BaseDenoiseMetric, LPIPSMetric, PSNRMetric, SSIMMetric

__all__ = ['BaseDenoiseMetric', 'PSNRMetric', 'SSIMMetric', 'LPIPSMetric']
