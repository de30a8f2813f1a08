# Quick-start: a tiny EBT denoiser trained on crops of scikit-image's bundled photos,
# validated on four held-out photos at noise levels 0.1 (in distribution) and 0.2 (OOD).
# Runs offline on a 2-core CPU in a few minutes:
#   python tools/train.py configs/quickstart/ebt_denoise_skimage.py
_base_ = [
    '../_base_/models/sizes/ebt_denoise_4xs.py',
    '../_base_/datasets/skimage_denoise_64.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(img_size=64, patch_size=8),
    thinker=dict(num_steps=1, alpha=3000.0, learnable_alpha=True))

max_iters = 600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(custom_keys={'thinker.alpha': dict(lr_mult=9000.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2,
                    save_last=True, save_best='denoise/psnr@0.1', rule='greater'))
custom_hooks = [dict(type='DenoiseVisualizationHook', interval=200)]
