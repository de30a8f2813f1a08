# EBT denoiser of size "xxs" (docs/method.md#model-sizes; see ARCH_SETTINGS for its shape).
_base_ = ['../ebt_denoise.py']
model = dict(backbone=dict(arch='xxs'))
