"""Parity families: the text EBT (reference ``model/nlp/ebt.py`` with
``model/ar_ebt_time_embed.py``, or ``model/ar_ebt_default.py`` for the row without step
information) and the Transformer++ baseline (``model/nlp/baseline_transformer.py`` with
``model/ar_transformer.py``).

The reference reads its vocabulary size and padding id from a Hugging Face tokenizer
loaded by name; a stand-in ``AutoTokenizer`` (``transformers`` is not needed) gives a small
vocabulary instead, with the GPT-NeoX convention that the end-of-text token (id 0) is
also the padding id its loss ignores.
"""
import contextlib
import functools
import sys
import types

import torch

from ebtvision.reference.text import TEXT_EBT, TEXT_TRANSFORMERPP
from .common import (FamilyResult, HParams, float_in_default_dtype, gradient_difference,
                     load_mapped, perturb_zero_weights, relative, same_random_draws)

# A small model: 2 blocks of width 32 with 2 heads over 8 tokens of a 50-token vocabulary;
# 2 thinking steps of the job's alpha 500 (with random weights they move the logits by
# thousands, hence losses in the thousands). The batch holds the end-of-text id (0) as a
# target so that the ignored targets are exercised.
VOCAB, CONTEXT, BATCH, STEPS, ALPHA = 50, 8, 3, 2, 500.0
SIZE = dict(depth=2, num_heads=2, embed_dims=32)
EOS_ID = 0


class _StubTokenizer:
    """What the reference reads of its tokenizer: its length and the end-of-text id."""
    eos_token_id = EOS_ID

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        return cls()

    def __len__(self):
        return VOCAB


@contextlib.contextmanager
def _stub_transformers():
    previous = sys.modules.get('transformers')
    stub = types.ModuleType('transformers')
    stub.AutoTokenizer = _StubTokenizer
    sys.modules['transformers'] = stub
    try:
        yield
    finally:
        if previous is None:
            del sys.modules['transformers']
        else:
            sys.modules['transformers'] = previous


def _reference_text_modules():
    with _stub_transformers():
        from model.nlp import baseline_transformer, ebt
    for module in (baseline_transformer, ebt):  # also if they were imported before
        module.AutoTokenizer = _StubTokenizer
    return ebt.EBT_NLP, baseline_transformer.Baseline_Transformer_NLP


def reference_hparams(**overrides) -> HParams:
    """``job_scripts/nlp/pretrain/ebt_s1.sh`` (and ``baseline_transformer.sh``) at a small
    size, with ``train_model.py``'s defaults for everything the scripts leave unset: time
    step token (``time_embed``), probabilities embedded by an untied linear layer, random
    normal initial logits, alpha 500 learnable, 2 steps, detached steps, no Langevin noise,
    no random step size or number of steps, SwiGLU hidden width = width."""
    hparams = HParams(
        tokenizer='EleutherAI/gpt-neox-20b', context_length=CONTEXT,
        embedding_dim=SIZE['embed_dims'], num_transformer_blocks=SIZE['depth'],
        multiheaded_attention_heads=SIZE['num_heads'], ffn_dim_multiplier=None,
        weight_initialization_method='xavier', weight_initialization_gain=1.0,
        batch_size_per_device=BATCH, execution_mode='pretrain', debug_unused_parameters=False,
        # EBT
        ebt_type='time_embed', ebt_norm='rms', ebt_act_func='silu', dyt_alpha_init=0.5,
        normalize_initial_condition=True, normalize_initial_condition_only_first_step=False,
        vocab_to_embed_uses_prob_dist=False, num_modality_processing_mlp_layers=1,
        denoising_initial_condition='random_noise', gaussian_random_noise_scaling=1.0,
        mcmc_step_size=ALPHA, mcmc_step_size_learnable=True, mcmc_num_steps=STEPS,
        langevin_dynamics_noise=0.0, randomize_mcmc_step_size_scale=1.0,
        randomize_mcmc_num_steps=0, randomize_mcmc_num_steps_min=0,
        randomize_mcmc_num_steps_final_landscape=False, no_mcmc_detach=False,
        truncate_mcmc=False, clamp_futures_grad=False, clamp_futures_grad_max_change=9.0,
        absolute_clamp=0.0, sharpen_predicted_distribution=0.0, soften_target_prob_dist=0.0,
        contrastive_loss=False, reconstruction_coeff=1.0, mcmc_replay_buffer=False,
        # EBT inference (ebt_advanced_inference), train_model.py's defaults
        infer_ebt_num_steps=1, infer_ebt_override_alpha=0.0, infer_generated_samples=1,
        infer_langevin_dynamics_noise=0.0, infer_langevin_first_step=False,
        infer_accept_lower_energies=False, infer_steps_final_landscape=False,
        infer_alpha_final_landscape=False, infer_energy_sampling_technique='min',
        log_image_every_n_steps=10**9)
    hparams.update(overrides)
    return hparams


def our_ebt(step_condition: str = 'token', candidate_embed: str = 'linear'):
    from ebtvision.models import EBTLanguageModel
    return EBTLanguageModel(
        backbone=dict(type='CausalEBT', arch=SIZE, mlp_ratio=1.5, step_condition=step_condition,
                      max_steps=STEPS if step_condition == 'token' else 0, norm_eps=1e-5,
                      rotary_layout='interleaved'),
        head=dict(type='TextHead', vocab_size=VOCAB, pad_id=EOS_ID,
                  candidate_embed=candidate_embed),
        thinker=dict(type='EnergyMinimizer', num_steps=STEPS, alpha=ALPHA))


def our_transformer_pp():
    from ebtvision.models import TransformerPPLanguageModel
    return TransformerPPLanguageModel(
        backbone=dict(type='CausalTransformer', arch=SIZE, mlp_ratio=1.5, norm_eps=1e-5,
                      rotary_layout='interleaved'),
        head=dict(type='TextHead', vocab_size=VOCAB, pad_id=EOS_ID, output_proj='linear'))


def token_batch(seed: int) -> torch.Tensor:
    """(B, CONTEXT + 1) token ids with a few end-of-text (ignored) targets."""
    tokens = torch.randint(1, VOCAB, (BATCH, CONTEXT + 1),
                           generator=torch.Generator().manual_seed(seed))
    tokens[0, 3] = tokens[1, -1] = EOS_ID
    return tokens


def compare_training(ours, reference, mapping, tokens: torch.Tensor):
    """``(loss ours, loss theirs, max relative gradient difference, gradients compared)``
    of each side's own training loss on ``tokens``; both draw the random initial logits
    (B, T, V) from the same stream."""
    reference.train(), ours.train()
    with same_random_draws(), float_in_default_dtype():
        loss_ours = ours.loss(tokens)['loss']
        # The data module gives (B, 1, L + 1) ids; the wrapper squeezes dim 1.
        loss_ref = reference.forward_loss_wrapper(dict(input_ids=tokens[:, None]),
                                                  'train')['loss']
        loss_ours.backward()
        loss_ref.backward()
    grad_rel, count, _ = gradient_difference(ours, reference, mapping)
    return loss_ours.item(), loss_ref.item(), grad_rel, count


def run_ebt(seed: int, name: str = 'text EBT', reference_options=None,
            our_options=None) -> FamilyResult:
    EBT_NLP, _ = _reference_text_modules()
    torch.manual_seed(seed)
    with float_in_default_dtype():
        reference = EBT_NLP(reference_hparams(**(reference_options or {})))
    perturb_zero_weights(reference)
    ours = our_ebt(**(our_options or {}))
    load_mapped(ours, reference, TEXT_EBT)
    tokens = token_batch(seed)

    losses = compare_training(ours, reference, TEXT_EBT, tokens)

    # Evaluation: the thinking trajectory from the same initial logits (the reference's
    # ebt_advanced_inference with its defaults: one step per landscape, trained alpha).
    reference.eval(), ours.eval()
    ids = tokens[:, :-1]
    with same_random_draws(), float_in_default_dtype():
        theirs = reference.ebt_advanced_inference(ids, learning=False)[2][1:]
        init = ours.head.init_candidates(*ids.shape)
        mine = ours.thinker(ours.energy_fn(ids), init, transform=ours.head.normalize).candidates
    eval_rel = max(relative(a.detach(), b.detach()) for a, b in zip(mine, theirs))
    if len(mine) != len(theirs):
        eval_rel = float('inf')
    return FamilyResult(name, *losses, eval_rel)


def run_transformer_pp(seed: int) -> FamilyResult:
    _, Baseline_Transformer_NLP = _reference_text_modules()
    torch.manual_seed(seed)
    with float_in_default_dtype():
        reference = Baseline_Transformer_NLP(reference_hparams())
    ours = our_transformer_pp()
    load_mapped(ours, reference, TEXT_TRANSFORMERPP)
    tokens = token_batch(seed)

    losses = compare_training(ours, reference, TEXT_TRANSFORMERPP, tokens)

    # Evaluation: next-token logits of the first CONTEXT tokens.
    reference.eval(), ours.eval()
    ids = tokens[:, :-1]
    with torch.no_grad(), float_in_default_dtype():
        theirs = reference(ids, learning=False, return_raw_logits=True)
        mine = ours.predict_logits(ids).logits
    return FamilyResult('text Transformer++', *losses, relative(mine, theirs))


# Our defaults against the reference's options that equal them: the tied candidate
# embedding (``--vocab_to_embed_uses_prob_dist``) and, without step embeddings, its
# ``default`` EBT (no step information).
run_ebt_tied = functools.partial(
    run_ebt, name='text EBT tied', reference_options=dict(vocab_to_embed_uses_prob_dist=True),
    our_options=dict(candidate_embed='tied'))
run_ebt_no_step = functools.partial(
    run_ebt, name='text EBT no step', reference_options=dict(ebt_type='default'),
    our_options=dict(step_condition='add'))

FAMILY_RUNS = [('text EBT', run_ebt), ('text EBT tied', run_ebt_tied),
               ('text EBT no step', run_ebt_no_step), ('text Transformer++', run_transformer_pp)]
