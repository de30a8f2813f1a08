"""What the language models share (LanguageModel), checked on the EBT and on Transformer++
with tiny Dyck batches: tied (and untied) weights, training, prediction, generation, the
loss mask."""
import torch
from conftest import TINY_CAUSAL_ARCH
from conftest import dyck_batch as batch
from conftest import text_ebt as ebt
from conftest import text_transformer_pp as transformer_pp
from mmengine.dataset import pseudo_collate

from ebtvision.datasets.text import DyckDataset
from ebtvision.models import EBTLanguageModel, TransformerPPLanguageModel
from ebtvision.models.layers import KVCache


def test_tied_weights_are_one_parameter():
    for model in (ebt(), transformer_pp()):
        names = [n for n, p in model.named_parameters() if p is model.head.token_embed.weight]
        assert names == ['head.token_embed.weight']
    model = transformer_pp()
    data = batch(model)
    model(**data, mode='loss')['loss'].backward()
    # The one matrix gets gradient from both the input embedding and the output logits.
    grad = model.head.token_embed.weight.grad
    used = set(data['inputs'].flatten().tolist())
    unused = [i for i in range(grad.shape[0]) if i not in used]
    assert grad[sorted(used)].abs().sum() > 0 and grad[unused].abs().sum() > 0


def test_training_lowers_the_loss():
    for model in (ebt(), transformer_pp()):
        data = batch(model, count=8)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        first = None
        for _ in range(15):
            loss = model(**data, mode='loss')['loss']
            first = loss.item() if first is None else first
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert loss.item() < first


def test_predict_fills_samples_and_generates_completions():
    for model in (ebt().eval(), transformer_pp().eval()):
        data = batch(model, count=2)
        with torch.no_grad():
            samples = model(**data, mode='predict')
        sample = samples[0]
        assert sample.pred_logits.shape == (24, 258) and sample.gt_tokens.shape == (24, )
        assert len(sample.pred_completion_tokens) == len(sample.completion.encode())
        assert ('energies' in sample) == isinstance(model, EBTLanguageModel)
        # Generation feeds its own tokens back: the first generated token is the argmax
        # of the prompt's last position.
        prompt = data['inputs'][:1, :sample.prompt_length]
        first = model.predict_logits(prompt, [sample], seed_offset=1).logits[0, -1].argmax()
        assert int(sample.pred_completion_tokens[0]) == int(first)


def test_batched_completions_match_one_sample_at_a_time():
    model = ebt().eval()
    dataset = DyckDataset(num_samples=12, length=(3, 8), seq_len=24, seed=5)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(12)]))
    lengths = [int(sample.prompt_length) for sample in data['data_samples']]
    assert len(set(lengths)) < len(lengths)  # some prompts share a length: real batching
    with torch.no_grad():
        batched = model(**data, mode='predict')
    for position in range(12):
        single = model.data_preprocessor(pseudo_collate([dataset[position]]))
        with torch.no_grad():
            alone = model(**single, mode='predict')[0]
        assert torch.equal(alone.pred_completion_tokens,
                           batched[position].pred_completion_tokens)
        assert len(alone.pred_completion_tokens) == len(alone.completion.encode())


def test_cached_generation_matches_rereading_the_sequence():
    for model, options in ((ebt().eval(), dict(num_steps=3, num_candidates=2)),
                           (transformer_pp().eval(), {})):
        prompt = batch(model, count=2)['inputs'][:, :10]
        cached = model.generate(prompt, 6, **options)
        assert torch.equal(cached, model.generate(prompt, 6, use_cache=False, **options))
        # The cached logits of the next token are the last row of the full pass.
        cache = KVCache()
        last = model.predict_logits(prompt, seed_offset=1, cache=cache, **options).logits
        full = model.predict_logits(prompt, seed_offset=1, **options).logits
        assert last.shape == (2, 1, 258) and cache.length == 10
        torch.testing.assert_close(last, full[:, -1:], rtol=1e-4, atol=1e-4)
        # Details: each generated token's final energy (EBTs only).
        details = model.generate(prompt, 3, return_details=True, **options)
        assert torch.equal(details.tokens, cached[:, :3])
        if isinstance(model, EBTLanguageModel):
            first = model.predict_logits(prompt, seed_offset=1, **options).energies[:, -1]
            assert details.energies.shape == (2, 3)
            torch.testing.assert_close(details.energies[:, 0], first, rtol=1e-4, atol=1e-4)
        else:
            assert details.energies is None
    # Adaptive stopping against the cache: a huge tolerance stops every token after one step.
    model = ebt().eval()
    prompt = batch(model, count=2)['inputs'][:, :10]
    adaptive = model.predict_logits(prompt, num_steps=4, tolerance=10.0, cache=KVCache())
    assert adaptive.steps_used.tolist() == [1.0, 1.0]
    torch.testing.assert_close(adaptive.logits,
                               model.predict_logits(prompt, num_steps=1, cache=KVCache()).logits)


def test_completion_loss_masks_the_prompt():
    model = ebt(loss_on='completion')
    data = batch(model, count=2)
    targets = data['inputs'][:, 1:]
    mask = model.loss_mask(targets, data['data_samples'])
    for row, sample in enumerate(data['data_samples']):
        start = sample.prompt_length - 1
        assert not mask[row, :start].any() and mask[row, start:sample.num_tokens - 1].all()


def test_untied_heads_of_the_reference_configuration():
    torch.manual_seed(0)
    models = (
        EBTLanguageModel(backbone=dict(type='CausalEBT', arch=TINY_CAUSAL_ARCH, max_steps=2,
                                       step_condition='token'),
                         head=dict(type='TextHead', candidate_embed='linear'),
                         thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=50.0)),
        TransformerPPLanguageModel(backbone=dict(type='CausalTransformer', arch=TINY_CAUSAL_ARCH),
                                   head=dict(type='TextHead', output_proj='linear')))
    for model, untied in zip(models, ('candidate_proj', 'logits_proj')):
        data = batch(model)
        model(**data, mode='loss')['loss'].backward()
        assert getattr(model.head, untied).weight.grad.abs().sum() > 0
        # Untied, the token embedding only embeds the real tokens: unused rows get no
        # gradient (tied, they do: see test_tied_weights_are_one_parameter).
        grad = model.head.token_embed.weight.grad
        used = sorted(set(data['inputs'][:, :-1].flatten().tolist()))
        unused = [i for i in range(grad.shape[0]) if i not in used]
        assert grad[used].abs().sum() > 0 and grad[unused].abs().sum() == 0
        model.eval()
        prompt = data['inputs'][:2, :10]
        assert torch.equal(model.generate(prompt, 4), model.generate(prompt, 4, use_cache=False))
