# Quick-start schedule and runtime: 600 iterations of AdamW with a short warm-up and a cosine
# decay, validation and checkpoints every 200 iterations (the best by PSNR@0.1 is kept).
_base_ = ['../default_runtime.py']

max_iters = 600
val_interval = 200
# An EBT's learnable thinker.alpha gets lr_mult = 3 * alpha and no weight decay (the
# constructor derives it from the model; other models get MMEngine's default groups).
optim_wrapper = dict(
    constructor='ThinkerAlphaOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=val_interval,
                    max_keep_ckpts=2, save_last=True, save_best='denoise/psnr@0.1',
                    rule='greater'))
custom_hooks = [dict(type='DenoiseVisualizationHook', interval=val_interval)]
