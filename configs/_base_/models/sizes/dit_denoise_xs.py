# DIT denoiser of size "xs" (docs/method.md#model-sizes; see ARCH_SETTINGS for its shape).
_base_ = ['../dit_denoise.py']
model = dict(backbone=dict(arch='xs'))
