"""Parity family: the image EBT denoiser (reference ``model/img/ebt_denoise.py``)."""
import torch

from ebtvision.reference import FAMILIES
from .common import (FamilyResult, HParams, gradient_difference, load_mapped,
                     perturb_zero_weights, relative, same_random_draws)

# A small model: 2 blocks of width 32 over 16 px images in 4 px patches; 2 thinking steps.
SIZE = dict(depth=2, num_heads=2, embed_dims=32)
IMG, PATCH, BATCH, STEPS, ALPHA = 16, 4, 4, 2, 3000.0


def reference_hparams() -> HParams:
    """S1 image denoising (``job_scripts/img/pretrain_denoising``): MLP ratio 1, no
    Langevin, detached steps, no random step size or number of steps."""
    return HParams(
        image_task='denoising', image_dims=[IMG, IMG], patch_size=PATCH,
        embedding_dim=SIZE['embed_dims'], num_transformer_blocks=SIZE['depth'],
        multiheaded_attention_heads=SIZE['num_heads'], ffn_dim_multiplier=1.0,
        diffusion_steps=100, denoise_images_noise_level=0.1,
        randomize_denoise_images_noise_level=False, mcmc_step_size=ALPHA,
        mcmc_step_size_learnable=True, mcmc_num_steps=STEPS, langevin_dynamics_noise=0.0,
        no_langevin_during_eval=True, randomize_mcmc_step_size_scale=1.0,
        randomize_mcmc_num_steps=0, randomize_mcmc_num_steps_min=0,
        randomize_mcmc_num_steps_final_landscape=False, no_mcmc_detach=False,
        truncate_mcmc=False, clamp_futures_grad=False, clamp_futures_grad_max_change=9.0,
        reconstruction_coeff=1.0, execution_mode='pretrain', mcmc_replay_buffer=False,
        batch_size_per_device=BATCH, infer_ebt_num_steps=STEPS, log_image_every_n_steps=10**9)


def our_model():
    from ebtvision.models import EBTDenoiser
    return EBTDenoiser(
        backbone=dict(type='BidirectionalEBT', arch=SIZE, img_size=IMG, patch_size=PATCH,
                      mlp_ratio=1.0),
        thinker=dict(type='EnergyMinimizer', num_steps=STEPS, alpha=ALPHA),
        loss_type='smooth_l1', train_noise_level=0.1)


def run(seed: int) -> FamilyResult:
    from model.img.ebt_denoise import EBT_IMG_Denoise
    torch.manual_seed(seed)
    reference = EBT_IMG_Denoise(reference_hparams())
    perturb_zero_weights(reference)
    ours = our_model()
    mapping = FAMILIES['image_ebt']
    load_mapped(ours, reference, mapping)
    images = torch.rand(BATCH, 3, IMG, IMG, generator=torch.Generator().manual_seed(seed)) * 2 - 1

    # Training loss through each implementation's own loss path; both draw the noise of
    # the noisy images from the same stream.
    reference.train(), ours.train()
    with same_random_draws():
        loss_ours = ours.loss(images)['loss']
        loss_ref = reference.forward_loss_wrapper(dict(image=images), 'train')['loss']
    loss_ours.backward()
    loss_ref.backward()
    grad_rel, count, _ = gradient_difference(ours, reference, mapping)

    # Evaluation: the thinking trajectory from the same noisy batch (the reference's
    # ``ebt_advanced_inference``, which its 0.2 job uses, with as many steps as trained).
    reference.eval(), ours.eval()
    noisy, _ = ours.add_noise(images, ours.train_timestep)
    theirs = reference.ebt_advanced_inference(noisy, learning=False)[0]
    mine = ours.think(noisy).candidates
    eval_rel = max(relative(a.detach(), b.detach()) for a, b in zip(mine, theirs))
    if len(mine) != len(theirs):
        eval_rel = float('inf')
    return FamilyResult('image EBT', loss_ours.item(), loss_ref.item(), grad_rel, count,
                        eval_rel)


FAMILY_RUNS = [('image EBT', run)]
