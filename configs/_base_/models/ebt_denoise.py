# Bidirectional EBT denoiser; size comes from a model_sizes base or backbone.arch.
model = dict(
    type='EBTDenoiser',
    data_preprocessor=dict(type='ImageDataPreprocessor'),
    backbone=dict(type='BidirectionalEBT', arch='xs', img_size=128, patch_size=16,
                  in_channels=3, mlp_ratio=4.0),
    thinker=dict(type='EnergyMinimizer', num_steps=1, alpha=3000.0, learnable_alpha=True),
    loss_type='smooth_l1',
    schedule=dict(type='DDPMSchedule', num_timesteps=1000, beta_start=1e-4, beta_end=2e-2),
    train_noise_level=0.1,
    eval_noise_levels=[0.1, 0.2],
    test_cfg=dict(num_steps=None, alpha=None),
)
