# EBT denoiser of size "medium" (docs/method.md#model-sizes; see ARCH_SETTINGS for its shape).
_base_ = ['../ebt_denoise.py']
model = dict(backbone=dict(arch='medium'))
