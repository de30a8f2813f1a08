# Transformer++ baseline (docs/method.md#video-next-frame-prediction): the same causal Llama-style
# transformer and latent embedding, regressing the next frame's latent directly.
# Unscaled latent means, as the reference's baseline job (no --sdxl_vae_standardization).
model = dict(
    type='TransformerPPNextFrame',
    data_preprocessor=dict(type='VideoDataPreprocessor'),
    encoder=dict(type='FrozenVAEEncoder', pretrained='stabilityai/sd-vae-ft-mse',
                 scaling_factor=0.18215, use_scaling=False),
    frame_size=224,
    backbone=dict(type='CausalTransformer', arch='xxs', mlp_ratio=4.0),
    head=dict(type='NextFrameHead', loss_type='smooth_l1', predict_latents=True),
    test_cfg=dict(decode=False),
)
