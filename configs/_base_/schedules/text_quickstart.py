# Language quick-start schedule: the image quick-start's optimiser, warm-up and cosine decay
# over 800 iterations, validation every 400, the best checkpoint by perplexity.
_base_ = ['./quickstart_600it.py']

max_iters = 800
val_interval = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=val_interval, save_best='text/perplexity', rule='less'))
custom_hooks = []
