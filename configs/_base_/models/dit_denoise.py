# DiT baseline denoiser: same backbone shape, timestep-conditioned, predicts the noise.
model = dict(
    type='DiTDenoiser',
    data_preprocessor=dict(type='ImageDataPreprocessor'),
    # learn_sigma: also learn the reverse variances (configs/dit_coco_denoise.py, as the
    # reference); off here, the quick-start trains the noise MSE alone.
    backbone=dict(type='DiT', arch='xs', img_size=128, patch_size=16, in_channels=3,
                  mlp_ratio=4.0, learn_sigma=False),
    schedule=dict(type='DDPMSchedule', num_timesteps=1000, beta_start=1e-4, beta_end=2e-2),
    train_noise_level=0.1,
    eval_noise_levels=[0.1, 0.2],
    test_cfg=dict(num_steps=100, method='ddim', start_from='true'),
)
