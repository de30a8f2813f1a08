# Quick-start DiT baseline with the same backbone, data and budget as
# ebt_denoise_skimage.py, for a like-for-like comparison:
#   python tools/train.py configs/quickstart/dit_denoise_skimage.py
_base_ = ['./ebt_denoise_skimage.py']

model = dict(
    _delete_=True,
    type='DiTDenoiser',
    data_preprocessor=dict(type='ImageDataPreprocessor'),
    backbone=dict(type='DiT', arch='4xs', img_size=64, patch_size=8, in_channels=3,
                  mlp_ratio=4.0),
    schedule=dict(type='DDPMSchedule', num_timesteps=1000, beta_start=1e-4, beta_end=2e-2),
    train_noise_level=0.1,
    eval_noise_levels=[0.1, 0.2],
    test_cfg=dict(num_steps=100, method='ddim', start_from='true'))

optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
