"""ThinkerAlphaOptimWrapperConstructor: the thinker's alpha gets lr_mult = 3 * alpha and no
weight decay, exactly the param groups of the hand-kept ``custom_keys`` it replaces; an
explicit key wins; a model without a (learnable) thinker alpha is left to MMEngine."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

from ebtvision.engine.optimizers import ThinkerAlphaOptimWrapperConstructor
from ebtvision.models.thinking import EnergyMinimizer
from ebtvision.utils import register_all_modules

CONSTRUCTOR = 'ThinkerAlphaOptimWrapperConstructor'


class Toy(nn.Module):

    def __init__(self, alpha=3000.0, learnable_alpha=True, thinker=True):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        if thinker:
            self.thinker = EnergyMinimizer(num_steps=1, alpha=alpha,
                                           learnable_alpha=learnable_alpha)


class Wrapped(nn.Module):
    """Stands in for a DDP wrapper: the model under ``.module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def optimizer_cfg(weight_decay=0.01, lr=1e-3):
    optimizer = dict(type='AdamW', lr=lr)
    if weight_decay is not None:
        optimizer['weight_decay'] = weight_decay
    return dict(type='OptimWrapper', optimizer=optimizer, clip_grad=dict(max_norm=1.0))


def build(model, paramwise_cfg=None, constructor=CONSTRUCTOR, **kwargs):
    cfg = optimizer_cfg(**kwargs)
    if constructor is not None:
        cfg['constructor'] = constructor
    if paramwise_cfg is not None:
        cfg['paramwise_cfg'] = paramwise_cfg
    return build_optim_wrapper(model, cfg)


def groups(wrapper, model):
    """Each param group as (names of its params, its settings without the tensors)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [([names[id(p)] for p in g['params']], {k: v for k, v in g.items() if k != 'params'})
            for g in wrapper.optimizer.param_groups]


def legacy(lr_mult, **extra):
    return dict(custom_keys={'thinker.alpha': dict(lr_mult=lr_mult, decay_mult=0.0)}, **extra)


@pytest.fixture(autouse=True)
def scope():
    register_all_modules()


@pytest.mark.parametrize('alpha', [3000.0, 30000.0, 500.0, 100.0])
def test_same_param_groups_as_the_hand_kept_custom_key(alpha):
    model = Toy(alpha)
    new = groups(build(model), model)
    old = groups(build(model, legacy(3 * alpha), constructor=None), model)
    assert new == old
    alpha_group = [settings for names, settings in new if names == ['thinker.alpha']][0]
    assert alpha_group['lr'] == 1e-3 * 3 * alpha and alpha_group['weight_decay'] == 0.0
    assert alpha_group['lr_mult'] == 3 * alpha and alpha_group['decay_mult'] == 0.0


def test_other_paramwise_options_are_kept():
    model = Toy(500.0)
    extra = dict(norm_decay_mult=0.0, custom_keys={'backbone.0': dict(lr_mult=0.5)})
    new = groups(build(model, extra), model)
    old_cfg = dict(norm_decay_mult=0.0, custom_keys={
        'backbone.0': dict(lr_mult=0.5),
        'thinker.alpha': dict(lr_mult=1500.0, decay_mult=0.0)})
    assert new == groups(build(model, old_cfg, constructor=None), model)
    assert extra['custom_keys'] == {'backbone.0': dict(lr_mult=0.5)}  # not modified


@pytest.mark.parametrize('key', ['thinker.alpha', 'thinker', 'alpha'])
def test_an_explicit_key_that_matches_alpha_wins(key):
    model = Toy(3000.0)
    explicit = dict(custom_keys={key: dict(lr_mult=7.0)})
    new = groups(build(model, explicit), model)
    assert new == groups(build(model, explicit, constructor=None), model)
    alpha_group = [settings for names, settings in new if names == ['thinker.alpha']][0]
    assert alpha_group['lr_mult'] == 7.0 and alpha_group['weight_decay'] == 0.01


@pytest.mark.parametrize('paramwise_cfg', [None, {}, dict(norm_decay_mult=0.0)])
def test_a_model_without_thinker_is_untouched(paramwise_cfg):
    model = Toy(thinker=False)
    new = groups(build(model, paramwise_cfg), model)
    assert new == groups(build(model, paramwise_cfg, constructor=None), model)


def test_a_frozen_alpha_is_untouched():
    model = Toy(3000.0, learnable_alpha=False)
    new = groups(build(model), model)
    assert new == groups(build(model, constructor=None), model)
    assert len(new) == 1  # MMEngine's single group, the frozen alpha included


def test_no_weight_decay_configured_gives_alpha_none():
    model = Toy(100.0)
    new = groups(build(model, weight_decay=None), model)
    alpha_group = [settings for names, settings in new if names == ['thinker.alpha']][0]
    assert alpha_group['lr'] == pytest.approx(1e-3 * 300.0)
    assert alpha_group['weight_decay'] == 0.0  # not AdamW's default 0.01


def test_a_wrapped_model_and_repeated_builds():
    model = Toy(500.0)
    constructor = ThinkerAlphaOptimWrapperConstructor(optimizer_cfg())
    first = groups(constructor(Wrapped(model)), model)
    other = Toy(100.0)
    second = groups(constructor(other), other)  # the first model's alpha is not kept
    assert first == groups(build(model, legacy(1500.0), constructor=None), model)
    assert second == groups(build(other, legacy(300.0), constructor=None), other)
    assert constructor.paramwise_cfg == {}


def test_thinkers_with_different_alphas_need_explicit_keys():
    model = nn.Module()
    model.a, model.b = Toy(500.0), Toy(100.0)
    with pytest.raises(ValueError, match='different alphas'):
        build(model)
    same = nn.Module()
    same.a, same.b = Toy(500.0), Toy(500.0)
    assert groups(build(same), same) == groups(
        build(same, legacy(1500.0), constructor=None), same)


def test_training_steps_match_the_hand_kept_key():
    torch.manual_seed(0)
    model = Toy(3000.0)
    twin = Toy(3000.0)
    twin.load_state_dict(model.state_dict())
    new, old = build(model), build(twin, legacy(9000.0), constructor=None)
    x = torch.randn(8, 4)
    for net, wrapper in ((model, new), (twin, old)):
        for _ in range(3):
            loss = (net.backbone(x).pow(2).mean() + net.thinker.alpha / 1000).sum()
            wrapper.update_params(loss)
    for (name, a), (_, b) in zip(model.state_dict().items(), twin.state_dict().items()):
        assert torch.equal(a, b), name
    assert model.thinker.alpha.item() != 3000.0  # alpha did learn
