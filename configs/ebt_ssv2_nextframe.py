# EBT next-frame prediction on Something-Something V2, the paper's S1 setting for the
# xxs size (docs/method.md#video-next-frame-prediction): 224 px frames in frozen SD-VAE
# latent space,
# 0.25 s between frames, context 16, 2 thinking steps, alpha 30000 learnable with lr
# multiplier 90000, lr 4e-4, batch 16 per GPU, 100k iterations with 10k warm-up.
#   python tools/train.py configs/ebt_ssv2_nextframe.py
# Faster: encode the clips once (python tools/extract_latents.py THIS_CONFIG) and train
# from the cache (see configs/ebt_ssv2_nextframe_cached.py).
_base_ = [
    '_base_/models/ebt_nextframe.py',
    '_base_/datasets/ssv2_nextframe_224.py',
    '_base_/schedules/adamw_100k_warmup10k.py',
    '_base_/default_runtime.py',
]

# Follows job_scripts/vid/pretrain/ebt_s1_vae.sh of the reference:
# - SwiGLU hidden = width (mlp_ratio 1.5 before the 2/3 factor): the job leaves
#   --ffn_dim_multiplier unset, which makes the hidden size the width.
# - step_condition='token': --ebt_type time_embed prepends a step token that real frames
#   and candidates attend to. Our 'add' (a step vector on the candidates only) would let
#   real frames be KV-cached across thinking steps and rollout frames, but it is not the
#   model the paper trained; with 'token' rollouts re-read the clip (as the reference).
# - rotary_layout='interleaved' and Xavier-normal init, the reference's, so that its
#   checkpoints load (tools/model_converters/from_reference.py) and training starts alike.
# - latents not scaled by 0.18215 (no --sdxl_vae_standardization; see the base model).
model = dict(
    backbone=dict(arch='xxs', max_steps=2, mlp_ratio=1.5, step_condition='token',
                  rotary_layout='interleaved', weight_init='xavier'),
    head=dict(weight_init='xavier'),
    thinker=dict(num_steps=2, alpha=30000.0, learnable_alpha=True))

# alpha's lr multiplier (3 x alpha = 90000) comes from the schedule's optimizer constructor.
optim_wrapper = dict(optimizer=dict(lr=4e-4))
# The schedule's base: 10k warm-up, then a cosine over 1M steps to lr / 10 (the job's
# --max_scheduling_steps 1000000 --min_lr_scale 10).

default_hooks = dict(checkpoint=dict(save_best='nextframe/smooth_l1', rule='less'))

# Per-frame energies (the model's uncertainty) and energy vs thinking step at validation.
custom_hooks = [dict(type='ThinkingVisualizationHook')]

# The global batch lr 4e-4 is for (tools/train.py --auto-scale-lr): the reference's
# vid/pretrain/ebt_s1_vae.sh, 16 per GPU x 4 GPUs x accumulate_grad_batches 4; to train
# as it did on 4 GPUs, add optim_wrapper.accumulative_counts=4.
auto_scale_lr = dict(enable=False, base_batch_size=256)
