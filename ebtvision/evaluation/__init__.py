"""Evaluation of ebtvision: pure image-quality functions and MMEngine metrics."""
from .functional import (LPIPSScorer, build_lpips, mse, psnr, psnr_batch, ssim, to_uint8_scale,
                         topk_accuracy, topk_correct)
from .metrics import (AccuracyMetric, BaseDenoiseMetric, LPIPSMetric, NextFrameMetric,
                      PSNRMetric, SSIMMetric, ThinkingMetric, LanguageModelMetric)

__all__ = [
    'to_uint8_scale', 'mse', 'psnr', 'psnr_batch', 'ssim', 'build_lpips', 'LPIPSScorer',
    'BaseDenoiseMetric', 'PSNRMetric', 'SSIMMetric', 'LPIPSMetric', 'NextFrameMetric',
    'ThinkingMetric', 'LanguageModelMetric', 'AccuracyMetric', 'topk_accuracy', 'topk_correct'
]
