# Runtime shared by every config: logging, checkpoints, visualisation, environment.
default_scope = 'ebtvision'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Checkpoints every 5k iterations; `last_checkpoint` lets --resume find the newest.
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=3,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Checkpoints resumable exactly (RNG states) and loadable weights-only.
    resume_state=dict(type='ResumeStateHook', diff_rank_seed=True),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
# For TensorBoard: vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')

log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# Each rank draws its own noise: ResumeStateHook(diff_rank_seed=True) reseeds rank r > 0
# with seed + r once everything is built (rank 0 unchanged) and keeps every rank's RNG
# state in checkpoints. MMEngine's `diff_rank_seed=True` here would also unpin the data
# samplers' seed (a single-process run would change), so it is left off.
randomness = dict(seed=0)
