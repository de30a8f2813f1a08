# DiT baseline on COCO 2014 with the same backbone and schedule as ebt_coco_denoise.py:
# timestep-conditioned, predicts the noise, trained on t ~ U[0, 100); inference runs
# 100 DDIM steps.
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
# MLP hidden = width (mlp_ratio 1): job_scripts/img/pretrain_denoising/dit.sh passes
# --ffn_dim_multiplier 1.
model = dict(
    backbone=dict(img_size=128, patch_size=16, mlp_ratio=1.0),
    test_cfg=dict(num_steps=100, method='ddim', respace=True, recurse=2))

default_hooks = dict(
    checkpoint=dict(save_best='denoise/psnr@0.1', rule='greater'))
custom_hooks = [dict(type='DenoiseVisualizationHook', interval=2000)]
