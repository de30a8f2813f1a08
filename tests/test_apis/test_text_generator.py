"""TextGenerator: the same continuations, energies and steps as the model's own
``generate``; options checked by the shared validator; EBT-only options refused for
Transformer++."""

import pytest
import torch
from conftest import write_text_model

from ebtvision.apis import ModelLoadError, TextGeneration, TextGenerator
from ebtvision.apis.options import ThinkingOptionError

@pytest.fixture(scope='module')
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp('text_generator')
    return {kind: write_text_model(folder, kind)[:2] for kind in ('ebt', 'tpp')}


@pytest.fixture(scope='module')
def ebt(models):
    return TextGenerator(*models['ebt'])


@pytest.fixture(scope='module')
def tpp(models):
    return TextGenerator(*models['tpp'])


def ids_of(generator, prompt):
    return torch.tensor([generator.tokenizer.encode(prompt)])


def test_ebt_continuation_is_the_models_own(ebt):
    assert ebt.is_ebt and ebt.default_steps == 2 and ebt.trained_length == 16
    options = dict(num_steps=3, num_candidates=2, tolerance=0.01)
    result = ebt('The for', 5, **options)
    expected = ebt.model.generate(ids_of(ebt, 'The for'), 5, return_details=True, **options)
    assert isinstance(result, TextGeneration)
    assert result.tokens == expected.tokens[0].tolist()
    assert result.energies == pytest.approx(expected.energies[0].tolist(), abs=1e-6)
    assert result.steps_used == expected.steps_used[0].tolist()
    assert all(1 <= steps <= 3 for steps in result.steps_used)
    assert result.continuation == ebt.tokenizer.decode(result.tokens)
    assert result.token_texts == [ebt.tokenizer.decode([token]) for token in result.tokens]
    assert result.prompt == 'The for' and result.prompt_length == len('The for'.encode())
    assert result.seconds > 0
    # Without options: the config's (2 steps, one candidate, no adaptive stopping).
    plain = ebt('The for', 4)
    expected = ebt.model.generate(ids_of(ebt, 'The for'), 4, return_details=True)
    assert plain.tokens == expected.tokens[0].tolist() and plain.steps_used is None
    assert plain.energies == pytest.approx(expected.energies[0].tolist(), abs=1e-6)


def test_several_prompts_are_generated_each_on_its_own(ebt):
    prompts = ['ab', 'é', 'The for']
    together = ebt(prompts, 3, num_candidates=2)
    assert [r.prompt for r in together] == prompts
    for prompt, result in zip(prompts, together):
        alone = ebt(prompt, 3, num_candidates=2)
        assert result.tokens == alone.tokens
        assert result.energies == pytest.approx(alone.energies, abs=1e-6)


def test_transformer_pp_generates_without_energies(tpp):
    assert not tpp.is_ebt and tpp.default_steps is None
    result = tpp('x' * 14, 4, num_candidates=1, tolerance=0)  # neutral values are fine
    expected = tpp.model.generate(ids_of(tpp, 'x' * 14), 4, return_details=True)
    assert result.tokens == expected.tokens[0].tolist()
    assert result.energies is None and result.steps_used is None


@pytest.mark.parametrize('options, named', [
    (dict(num_candidates=2), 'num_candidates applies'),
    (dict(num_steps=3), 'num_steps applies'),
    (dict(alpha=1.0, tolerance=0.1), 'alpha, tolerance apply'),
])
def test_ebt_only_options_are_refused_for_transformer_pp(tpp, options, named):
    with pytest.raises(ValueError, match=f'{named} to EBTs; TransformerPPLanguageModel '
                       'predicts each token in one pass'):
        tpp('abc', 2, **options)


@pytest.mark.parametrize('options, message', [
    (dict(num_steps=0), 'argument.num_steps must be an integer >= 1, got 0'),
    (dict(num_candidates=1.5), 'argument.num_candidates must be an integer >= 1'),
    (dict(alpha=float('nan')), 'argument.alpha must be finite'),
    (dict(tolerance=-1), 'argument.tolerance must be >= 0'),
    (dict(num_tokens=0), 'argument.num_tokens must be an integer >= 1'),
])
def test_bad_options_get_the_validators_error(ebt, tpp, options, message):
    for generator in (ebt, tpp):
        with pytest.raises(ThinkingOptionError, match=message):
            generator('abc', **options)


def test_bad_prompts_and_models(models, ebt, tmp_path):
    with pytest.raises(ValueError, match='non-empty'):
        ebt('', 2)
    with pytest.raises(ValueError, match='non-empty'):
        ebt(['a', ''], 2)
    assert TextGenerator.model_class(models['tpp'][0]).__name__ == 'TransformerPPLanguageModel'
    denoiser = tmp_path / 'denoiser.py'
    denoiser.write_text("model = dict(type='DiTDenoiser', backbone=dict(type='DiT', arch=dict("
                        "depth=1, num_heads=2, embed_dims=16), img_size=16, patch_size=8))\n")
    with pytest.raises(ModelLoadError, match="model type 'DiTDenoiser' is not a language model"):
        TextGenerator.model_class(str(denoiser))
    with pytest.raises(ModelLoadError, match='builds a DiTDenoiser, not a language model'):
        TextGenerator(str(denoiser), None)
    with pytest.raises(ModelLoadError, match='does not fit'):
        TextGenerator(models['ebt'][0], models['tpp'][1])
