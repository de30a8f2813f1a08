# The paper's schedule: AdamW, 100k iterations, 10k linear warm-up, then cosine. As in the
# reference's jobs (--max_scheduling_steps 1000000 --min_lr_scale 10, e.g.
# job_scripts/img/pretrain_denoising/ebt_s1.sh), the warm-up starts near 0 and the cosine
# is laid out over 1M steps down to lr / 10, of which the 100k trained use the first
# tenth: the rate ends at 98 % of its peak.
# An EBT's learnable thinker.alpha gets lr_mult = 3 * alpha and no weight decay (the
# constructor derives it from the model; other models get MMEngine's default groups).
optim_wrapper = dict(
    constructor='ThinkerAlphaOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=False, begin=0, end=10000),
    # eta_min_ratio (not an absolute eta_min) so every group, alpha's included, ends at
    # a tenth of its own rate, whatever lr a config sets.
    dict(type='CosineAnnealingLR', by_epoch=False, begin=10000, end=100000, T_max=990000,
         eta_min_ratio=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100000, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
