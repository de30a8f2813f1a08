# DiT baseline on COCO 2014 with the same backbone and schedule as ebt_coco_denoise.py
# (no weight decay, see below): timestep-conditioned, predicts the noise (and learns the
# reverse variances), trained on t ~ U[0, 100); inference runs 100 DDIM steps.
_base_ = [
    '_base_/models/sizes/dit_denoise_large.py',
    '_base_/datasets/coco_denoise_128.py',
    '_base_/schedules/adamw_100k_warmup10k.py',
    '_base_/default_runtime.py',
]

# Evaluation follows the reference's job_scripts/img/inference/dit_denoising.sh: the schedule
# is stretched per noise level so the DiT starts at a timestep it trained on (respace), and
# above the training level the reverse process runs twice more on its own output (recurse 2).
# tools/test.py --no-respace --recurse 0 gives ebtvision's direct protocol instead.
# Training follows job_scripts/img/pretrain_denoising/dit.sh: MLP hidden = width
# (--ffn_dim_multiplier 1), and the reference's DiT always learns sigma (its
# create_diffusion default: the noise MSE plus the unscaled variational-bound term).
# The reference noises its test images at level s on the schedule of diffusion_steps / s
# steps, for the EBT and the DiT alike (inference/img/generate_image.py; abar 0.6597
# instead of 0.6590 at 0.2): stretch_eval_noise. Both models must see the same inputs,
# so ebt_coco_denoise.py sets it too.
model = dict(
    backbone=dict(img_size=128, patch_size=16, mlp_ratio=1.0, learn_sigma=True),
    test_cfg=dict(num_steps=100, method='ddim', respace=True, recurse=2),
    stretch_eval_noise=True)

# dit.sh passes --weight_decay 0.0 (the EBT jobs keep the schedule's 0.01).
optim_wrapper = dict(optimizer=dict(weight_decay=0.0))

default_hooks = dict(
    checkpoint=dict(save_best='denoise/psnr@0.1', rule='greater'))
custom_hooks = [dict(type='DenoiseVisualizationHook', interval=2000)]

# The global batch lr 1e-4 is for (tools/train.py --auto-scale-lr): the reference's
# pretrain_denoising/dit.sh, 128 per GPU x 1 GPU x accumulate_grad_batches 1.
auto_scale_lr = dict(enable=False, base_batch_size=128)
