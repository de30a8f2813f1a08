"""Parity families: the DiT denoiser baseline (reference ``model/img/dit_denoise.py``),
with learned sigma (the reference's only setting) and without."""
import contextlib

import torch

from ebtvision.reference.image import IMAGE_DIT
from .common import (FamilyResult, HParams, gradient_difference, load_mapped,
                     perturb_zero_weights, relative, same_random_draws)

# The image EBT family's size: 2 blocks of width 32 over 16 px images in 4 px patches.
SIZE = dict(depth=2, num_heads=2, embed_dims=32)
IMG, PATCH, BATCH = 16, 4, 4
TRAIN_STEPS, TRAIN_LEVEL, EVAL_LEVEL, RECURSE = 100, 0.1, 0.2, 2


def reference_hparams(noise_level: float) -> HParams:
    """``job_scripts/img/pretrain_denoising/dit.sh`` (100 training timesteps at level
    0.1, MLP ratio 1) at our size; at 0.2 with two recursions the inference job
    ``job_scripts/img/inference/dit_denoising.sh``."""
    return HParams(
        image_task='denoising', image_dims=[IMG, IMG], patch_size=PATCH,
        embedding_dim=SIZE['embed_dims'], num_transformer_blocks=SIZE['depth'],
        multiheaded_attention_heads=SIZE['num_heads'], ffn_dim_multiplier=1.0,
        diffusion_steps=TRAIN_STEPS, denoise_images_noise_level=noise_level,
        use_deterministic_reverse=True, model_name='dit', infer_increase_steps=0,
        infer_recurse_diffusion_n_times=RECURSE, batch_size_per_device=BATCH,
        log_image_every_n_steps=10**9)


def build_reference(noise_level: float, learn_sigma: bool):
    """The reference's model. Its hyper-parameters cannot turn learned sigma off: without
    it, its DiT and its diffusion are rebuilt from its own constructors with
    ``learn_sigma=False`` (fixed variances, plain noise MSE)."""
    from model.diffusion import create_diffusion
    from model.diffusion_transformer import DiT
    from model.img.dit_denoise import Diffusion_Transformer_IMG_Denoise
    hparams = reference_hparams(noise_level)
    model = Diffusion_Transformer_IMG_Denoise(hparams)
    if not learn_sigma:
        model.diffusion_transformer = DiT(
            input_size=IMG, patch_size=PATCH, in_channels=3, hidden_size=SIZE['embed_dims'],
            depth=SIZE['depth'], num_heads=SIZE['num_heads'], mlp_ratio=1.0, learn_sigma=False)
        model.diffusion = create_diffusion(
            timestep_respacing='', diffusion_steps=int(TRAIN_STEPS / noise_level),
            learn_sigma=False)
    return model


def our_model(learn_sigma: bool):
    from ebtvision.models import DiTDenoiser
    return DiTDenoiser(
        backbone=dict(type='DiT', arch=SIZE, img_size=IMG, patch_size=PATCH, mlp_ratio=1.0,
                      learn_sigma=learn_sigma),
        train_noise_level=TRAIN_LEVEL, stretch_eval_noise=True,
        test_cfg=dict(num_steps=TRAIN_STEPS, method='ddim', respace=True, recurse=RECURSE))


def float64_timestep_features(*embedders) -> None:
    """The reference computes its sinusoidal timestep features in float32 and feeds them
    to the MLP as they are, which fails when the MLP is float64; cast them to the MLP's
    dtype, as ours does (the float32 values are equal on both sides)."""
    for embedder in embedders:
        embedder.mlp.register_forward_pre_hook(
            lambda mlp, args: (args[0].to(mlp[0].weight.dtype), ))


@contextlib.contextmanager
def fixed_timesteps(t: torch.Tensor, calls: list):
    """Both sides draw the training timesteps with ``torch.randint(0, steps, (B,))``;
    answer each such call with ``t`` (same_random_draws patches float draws only)."""
    original = torch.randint

    def randint(low, high, size, **kwargs):
        if (low, high, tuple(size)) != (0, TRAIN_STEPS, (BATCH, )):
            raise AssertionError(f'unexpected randint({low}, {high}, {size})')
        calls.append(True)
        return t.clone().to(kwargs.get('device') or 'cpu')

    torch.randint = randint
    try:
        yield
    finally:
        torch.randint = original


def run_family(seed: int, learn_sigma: bool, name: str) -> FamilyResult:
    from inference.img.generate_image import call_model_forward
    torch.manual_seed(seed)
    reference = build_reference(TRAIN_LEVEL, learn_sigma)
    perturb_zero_weights(reference)
    ours = our_model(learn_sigma)
    load_mapped(ours, reference, IMAGE_DIT)
    float64_timestep_features(reference.diffusion_transformer.t_embedder)
    positions = relative(ours.backbone.pos_embed, reference.diffusion_transformer.pos_embed)
    if positions > 0:
        raise AssertionError(f'fixed positions differ by {positions:.1e} (relative)')
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(BATCH, 3, IMG, IMG, generator=generator) * 2 - 1
    # Timestep 0 (the decoder likelihood term of the bound), the last trained one, others.
    t = torch.tensor([0, TRAIN_STEPS - 1, 7, 42])

    # Training loss through each implementation's own path; equal timesteps and noise.
    reference.train(), ours.train()
    calls = []
    with same_random_draws(), fixed_timesteps(t, calls):
        loss_ours = ours.loss(images)['loss']
        loss_ref = reference.forward_loss_wrapper(dict(image=images), 'train')['loss']
    if len(calls) != 2:
        raise AssertionError(f'{len(calls)} timestep draws, expected one per side')
    loss_ours.backward()
    loss_ref.backward()
    grad_rel, count, _ = gradient_difference(ours, reference, IMAGE_DIT)

    # Evaluation at 0.2 as the reference's inference job: its model at that level (a
    # diffusion of 100 / 0.2 steps) noises at t = 99 and runs DDIM from there three times.
    reference_eval = build_reference(EVAL_LEVEL, learn_sigma)
    reference_eval.load_state_dict(reference.state_dict())
    float64_timestep_features(reference_eval.diffusion_transformer.t_embedder)
    reference_eval.eval(), ours.eval()
    steps = reference_eval.diffusion.num_timesteps
    t_eval = torch.tensor(int(EVAL_LEVEL * steps) - 1).expand(BATCH)
    with same_random_draws():
        noisy_ref = reference_eval.diffusion.q_sample(images, t_eval)
        noisy_ours = ours.noise_for_eval(images, EVAL_LEVEL, torch.randn_like(images))
        theirs, _ = call_model_forward(reference_eval.hparams, reference_eval, noisy_ref,
                                       BATCH, t_eval)
    mine, _ = ours.denoise(noisy_ref, EVAL_LEVEL)
    # Both outputs are clean-image predictions clipped to [-1, 1] at the last step.
    eval_rel = max(relative(noisy_ours, noisy_ref), relative(mine, theirs))
    if learn_sigma:
        # Not the reference's evaluation (its jobs use DDIM), but its ancestral sampler
        # is where the learned variances act: one DDPM pass, equal noise at every step.
        with same_random_draws():
            theirs = reference_eval.diffusion.p_sample_loop(
                reference_eval.forward, noisy_ref.shape, noise=noisy_ref,
                model_kwargs=dict(y=None), device=noisy_ref.device, timestep_start=t_eval[0])
            ours.test_cfg.update(method='ddpm', recurse=0)
            mine, _ = ours.denoise(noisy_ref, EVAL_LEVEL)
        eval_rel = max(eval_rel, relative(mine, theirs))
    return FamilyResult(name, loss_ours.item(), loss_ref.item(), grad_rel, count, eval_rel)


FAMILY_RUNS = [
    ('image DiT', lambda seed: run_family(seed, False, 'image DiT')),
    ('image DiT learned sigma', lambda seed: run_family(seed, True, 'image DiT learned sigma')),
]
