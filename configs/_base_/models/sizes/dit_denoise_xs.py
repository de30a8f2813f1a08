# DIT denoiser of size "xs" (ebt-method.md section 7; see ARCH_SETTINGS for its shape).
_base_ = ['../dit_denoise.py']
model = dict(backbone=dict(arch='xs'))
