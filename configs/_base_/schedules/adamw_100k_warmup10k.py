# The paper's denoising schedule: AdamW, 100k iterations, 10k linear warm-up, then cosine.
# An EBT's learnable thinker.alpha gets lr_mult = 3 * alpha and no weight decay (the
# constructor derives it from the model; other models get MMEngine's default groups).
optim_wrapper = dict(
    constructor='ThinkerAlphaOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=10000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=10000, end=100000, eta_min=1e-6),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100000, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
