# EBT next-frame prediction with the System 2 training regularisers
# (docs/method.md#system-1-and-system-2-options), following the authors' S2 video job: the
# graph kept between steps with the loss on the last step only (truncate), a replay buffer
# of past predictions, Langevin noise (sigma 1), random step size per frame (scale 2), and
# 2-3 steps on the final landscape (one landscape, alpha 3000), as
# job_scripts/vid/pretrain/ebt_s2_vae.sh:
# - alpha stays fixed: the job does not pass --mcmc_step_size_learnable.
# - the Langevin noise goes on the candidate's embedding for each energy evaluation only
#   (model/vid/ebt.py adds it after the down-projection; the latent keeps no noise).
# - latents x 0.18215: this job alone passes --sdxl_vae_standardization. A latent cache
#   for this config must be extracted with it (its own cache_dir): caches store what the
#   config's encoder outputs.
_base_ = ['ebt_ssv2_nextframe.py']

model = dict(
    encoder=dict(use_scaling=True),
    backbone=dict(max_steps=1),
    thinker=dict(
        num_steps=1,
        alpha=3000.0,
        learnable_alpha=False,
        langevin_space='embedding',
        final_landscape_repeats=(2, 3),
        random_step_size_scale=2.0,
        random_step_size_dims=2,
        langevin_sigma=1.0,
        detach_between_steps=False,
        truncate=True),
    replay_buffer=dict(type='ReplayBuffer', capacity=192, replay_fraction=0.5))

# The global batch lr 4e-4 is for (tools/train.py --auto-scale-lr): the reference's
# vid/pretrain/ebt_s2_vae.sh, 32 per GPU x 4 GPUs x accumulate_grad_batches 2.
auto_scale_lr = dict(enable=False, base_batch_size=256)
