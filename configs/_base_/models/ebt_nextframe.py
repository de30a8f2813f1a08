# Causal EBT next-frame predictor over frozen SD-VAE latents
# (docs/method.md#video-next-frame-prediction):
# 224 px frames -> 4x28x28 = 3136-dim latent means, a learned linear layer to the width,
# candidates ~ N(0, I), 2 thinking steps with alpha 30000 (S1), smooth-L1 loss.
# Latents are not multiplied by 0.18215: the reference scales them only with
# --sdxl_vae_standardization, which only its S2 video job passes (the S2 config sets
# use_scaling=True).
model = dict(
    type='EBTNextFrame',
    data_preprocessor=dict(type='VideoDataPreprocessor'),
    encoder=dict(type='FrozenVAEEncoder', pretrained='stabilityai/sd-vae-ft-mse',
                 scaling_factor=0.18215, use_scaling=False),
    frame_size=224,
    backbone=dict(type='CausalEBT', arch='xxs', mlp_ratio=4.0, max_steps=2),
    head=dict(type='NextFrameHead', loss_type='smooth_l1', init_std=1.0),
    thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=30000.0, learnable_alpha=True),
    # S2 configs add replay_buffer=dict(type='ReplayBuffer', ...).
    # decode=True adds pixel PSNR at evaluation (one VAE decode per predicted frame).
    test_cfg=dict(num_steps=None, alpha=None, num_candidates=1, decode=False),
)
