"""Parity families of video: the reference's ``EBT_VID`` (``model/vid/ebt.py``) in its S1
and S2 settings, and its Transformer++ ``Baseline_Transformer_VID``
(``model/vid/baseline_transformer.py``).

The reference's VAE is the harness's identity stub, so both sides read the same SD-VAE
shaped latents, 4x28x28 (the reference projects 3136 = 4*28*28 latent dims to its
width whenever the width is not 3136): the reference through its own
``forward_loss_wrapper(clips, 'train')``, ours through ``model.loss`` with latent-cache
inputs (``input_kind='latents'``).

Random draws come from ``same_random_draws(fixed_randint=True)``: the S2 random number of
final-landscape steps is then the largest of its range on both sides.
"""
import torch

from ebtvision.reference.video import VIDEO_EBT, VIDEO_TRANSFORMERPP
from .common import (FamilyResult, HParams, float_in_default_dtype, gradient_difference,
                     load_mapped, perturb_zero_weights, same_random_draws)

SIZE = dict(depth=2, num_heads=2, embed_dims=32)
LATENT = (4, 28, 28)  # what the reference's hard-coded 3136-dim projection expects
CONTEXT, BATCH = 3, 2  # clips of CONTEXT + 1 frames


def reference_hparams(**changes) -> HParams:
    """The reference's video arguments at train_model.py's defaults, as its S1 job
    (``job_scripts/vid/pretrain/ebt_s1_vae.sh``) sets them, with a small width."""
    hparams = HParams(
        backbone_type='vae', vit_backbone_size='small', embedding_dim=SIZE['embed_dims'],
        num_transformer_blocks=SIZE['depth'], multiheaded_attention_heads=SIZE['num_heads'],
        ffn_dim_multiplier=None, ebt_type='time_embed', ebt_norm='rms', ebt_act_func='silu',
        dyt_alpha_init=0.5, weight_initialization_method='xavier',
        weight_initialization_gain=1.0, context_length=CONTEXT,
        batch_size_per_device=BATCH, execution_mode='pretrain', debug_unused_parameters=False,
        energy_loss_fn='MSE', energy_loss_coeff=0.0, energy_loss_hinge=0.0,
        out_of_bounds_loss_coeff=0.0, reconstruction_coeff=1.0,
        denoising_initial_condition='random_noise', sdxl_vae_standardization=False,
        mcmc_step_size=10.0, mcmc_step_size_learnable=True, mcmc_num_steps=2,
        langevin_dynamics_noise=0.0, langevin_dynamics_noise_learnable=False,
        randomize_mcmc_step_size_scale=1.0, randomize_mcmc_num_steps=0,
        randomize_mcmc_num_steps_min=0, randomize_mcmc_num_steps_final_landscape=False,
        no_mcmc_detach=False, truncate_mcmc=False, clamp_futures_grad=False,
        clamp_futures_grad_max_change=9.0, mcmc_replay_buffer=False,
        mcmc_replay_buffer_size=192, mcmc_replay_buffer_sample_bs_percent=0.5,
        weight_tie_vae_proj=False, log_image_every_n_steps=10**9)
    hparams.update(changes)
    return hparams


def s2_changes() -> dict:
    """What ``job_scripts/vid/pretrain/ebt_s2_vae.sh`` changes (alpha not learnable)."""
    return dict(mcmc_num_steps=1, mcmc_step_size=3.0, mcmc_step_size_learnable=False,
                no_mcmc_detach=True, truncate_mcmc=True, mcmc_replay_buffer=True,
                langevin_dynamics_noise=1.0, randomize_mcmc_step_size_scale=2.0,
                randomize_mcmc_num_steps=2, randomize_mcmc_num_steps_min=2,
                sdxl_vae_standardization=True)


def _backbone(**kwargs) -> dict:
    return dict(arch=SIZE, mlp_ratio=1.5, rotary_layout='interleaved', **kwargs)


def our_ebt(s2: bool):
    from ebtvision.models import EBTNextFrame
    if s2:
        thinker = dict(type='EnergyMinimizer', num_steps=1, alpha=3.0, learnable_alpha=False,
                       final_landscape_repeats=(2, 3), random_step_size_scale=2.0,
                       random_step_size_dims=2, langevin_sigma=1.0,
                       langevin_space='embedding', detach_between_steps=False,
                       truncate=True)
        replay = dict(type='ReplayBuffer', capacity=192, replay_fraction=0.5)
    else:
        thinker = dict(type='EnergyMinimizer', num_steps=2, alpha=10.0, learnable_alpha=True)
        replay = None
    return EBTNextFrame(
        backbone=dict(type='CausalEBT', max_steps=thinker['num_steps'],
                      step_condition='token', **_backbone()),
        head=dict(type='NextFrameHead', loss_type='smooth_l1', init_std=1.0),
        latent_shape=LATENT, thinker=thinker, replay_buffer=replay)


def our_transformerpp():
    from ebtvision.models import TransformerPPNextFrame
    return TransformerPPNextFrame(
        backbone=dict(type='CausalTransformer', **_backbone()),
        head=dict(type='NextFrameHead', loss_type='smooth_l1', output_linear=True),
        latent_shape=LATENT)


def clips(count: int, seed: int) -> torch.Tensor:
    """(count, CONTEXT + 1, 4, 28, 28) latents (the identity VAE passes them through)."""
    return torch.randn(count, CONTEXT + 1, *LATENT, generator=torch.Generator().manual_seed(seed))


def latent_samples(count: int):
    from ebtvision.structures import VideoDataSample
    samples = [VideoDataSample() for _ in range(count)]
    for sample in samples:
        sample.set_metainfo(dict(input_kind='latents'))
    return samples


def compare(name: str, ours, reference, mapping, latents: torch.Tensor, scale: float = 1.0,
            warm_up=None) -> FamilyResult:
    """One training step of each on ``latents``; ``scale`` is the reference's latent
    scale (0.18215 with ``--sdxl_vae_standardization``), applied to ours' inputs as our
    encoder would. ``warm_up`` latents run one step first on both (filling the replay
    buffer with one clip) and their gradients are dropped."""
    ours.train(), reference.train()
    with same_random_draws(fixed_randint=True), float_in_default_dtype():
        if warm_up is not None:
            ours.loss(warm_up * scale, latent_samples(len(warm_up)))['loss'].backward()
            reference.forward_loss_wrapper(warm_up, 'train')['loss'].backward()
            ours.zero_grad(set_to_none=True), reference.zero_grad(set_to_none=True)
        loss_ours = ours.loss(latents * scale, latent_samples(len(latents)))['loss']
        loss_ref = reference.forward_loss_wrapper(latents, 'train')['loss']
        loss_ours.backward()
        loss_ref.backward()
    grad_rel, count, _ = gradient_difference(ours, reference, mapping)
    return FamilyResult(name, loss_ours.item(), loss_ref.item(), grad_rel, count)


def build_reference(cls, hparams, seed: int):
    torch.manual_seed(seed)
    with float_in_default_dtype():  # its rotary tables are made in __init__
        reference = cls(hparams)
    perturb_zero_weights(reference)
    return reference


def run_ebt_s1(seed: int) -> FamilyResult:
    from model.vid.ebt import EBT_VID
    reference = build_reference(EBT_VID, reference_hparams(), seed)
    ours = our_ebt(s2=False)
    load_mapped(ours, reference, VIDEO_EBT)
    return compare('video EBT S1', ours, reference, VIDEO_EBT, clips(BATCH, seed))


def run_ebt_s2(seed: int) -> FamilyResult:
    """S2 with one buffered clip: a one-clip step fills both replay buffers, so the
    compared step replays exactly that clip (both sample min(k, 1) = 1 record)."""
    from model.vid.ebt import EBT_VID
    reference = build_reference(EBT_VID, reference_hparams(**s2_changes()), seed)
    ours = our_ebt(s2=True)
    # The buffer's contents are state of ours, no weight of the reference.
    load_mapped(ours, reference, VIDEO_EBT, ours_only=(r'replay_buffer\._extra_state', ))
    result = compare('video EBT S2', ours, reference, VIDEO_EBT, clips(BATCH, seed),
                     scale=0.18215, warm_up=clips(1, seed + 1))
    replayed = len(ours.replay_buffer), len(reference.replay_buffer.buffer)
    if replayed != (1 + BATCH, 1 + BATCH):
        result.why = f'replay buffers hold {replayed} clips (ours, reference), expected 3 each'
    return result


def run_transformerpp(seed: int) -> FamilyResult:
    from model.vid.baseline_transformer import Baseline_Transformer_VID
    reference = build_reference(Baseline_Transformer_VID, reference_hparams(), seed)
    ours = our_transformerpp()
    load_mapped(ours, reference, VIDEO_TRANSFORMERPP)
    return compare('video Transformer++', ours, reference, VIDEO_TRANSFORMERPP,
                   clips(BATCH, seed))


FAMILY_RUNS = [('video EBT S1', run_ebt_s1), ('video EBT S2', run_ebt_s2),
               ('video Transformer++', run_transformerpp)]
