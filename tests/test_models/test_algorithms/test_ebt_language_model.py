"""EBT language model on tiny Dyck batches: training through thinking, System 2 options."""
import pytest
import torch
from conftest import TINY_CAUSAL_ARCH as ARCH
from conftest import dyck_batch as batch
from conftest import text_ebt as ebt

from ebtvision.models import EBTLanguageModel


def test_ebt_loss_backpropagates_through_thinking():
    model = ebt()
    data = batch(model)
    logs = model(**data, mode='loss')
    assert {'loss', 'final_ce', 'accuracy', 'alpha'} <= set(logs)
    logs['loss'].backward()
    assert model.thinker.alpha.grad is not None and model.backbone.energy_head.weight.grad.abs().sum() > 0
    assert model.head.token_embed.weight.grad.abs().sum() > 0


def test_self_verification_and_thinking_longer_for_text():
    model = ebt().eval()
    ids = batch(model, count=2)['inputs'][:, :-1]
    one = model.predict_logits(ids, num_candidates=1)
    four = model.predict_logits(ids, num_candidates=4)
    assert (four.energies <= one.energies + 1e-6).all()
    assert (four.energies < one.energies - 1e-6).any()
    longer = model.predict_logits(ids, num_steps=5)
    assert not torch.allclose(longer.logits, one.logits)
    adaptive = model.predict_logits(ids, num_steps=6, tolerance=10.0)
    assert adaptive.steps_used.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match='loss_on'):
        ebt(loss_on='prompt')


def test_s2_options_train_for_text():
    torch.manual_seed(0)
    model = EBTLanguageModel(
        backbone=dict(type='CausalEBT', arch=ARCH, max_steps=2),
        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=5.0, learnable_alpha=False,
                     random_step_size_scale=2.0, random_step_size_dims=2, langevin_sigma=3.0,
                     final_landscape_repeats=(2, 3), truncate=True,
                     detach_between_steps=False),
        replay_buffer=dict(type='ReplayBuffer', capacity=8, replay_fraction=0.5, seed=0))
    data = batch(model, count=4)
    first = model(**data, mode='loss')
    assert float(first['replayed']) == 0 and len(model.replay_buffer) == 4
    second = model(**data, mode='loss')
    assert float(second['replayed']) == 2 and len(model.replay_buffer) == 8
    second['loss'].backward()
    assert torch.isfinite(second['loss']) and model.backbone.energy_head.weight.grad is not None
