# DiT baseline on COCO 2014 with the same backbone and schedule as ebt_coco_denoise.py:
# timestep-conditioned, predicts the noise, trained on t ~ U[0, 100); inference runs
# 100 reverse steps from the noise level's timestep.
_base_ = [
    '_base_/models/sizes/dit_denoise_large.py',
    '_base_/datasets/coco_denoise_128.py',
    '_base_/schedules/adamw_100k_warmup10k.py',
    '_base_/default_runtime.py',
]

model = dict(
    backbone=dict(img_size=128, patch_size=16),
    test_cfg=dict(num_steps=100, method='ddim'))

default_hooks = dict(
    checkpoint=dict(save_best='denoise/psnr@0.1', rule='greater'))
custom_hooks = [dict(type='DenoiseVisualizationHook', interval=2000)]
