"""One validator for every inference option (ebtvision/models/thinking/options.py)."""
import math

import pytest
import torch
from conftest import write_denoiser

from ebtvision.apis import DenoiseInferencer
from ebtvision.models.thinking.options import (ThinkingOptionError, check_test_cfg,
                                               resolve_option, resolve_thinking)
from ebtvision.registry import MODELS
from ebtvision.utils import register_all_modules


@pytest.mark.parametrize('name, value, message', [
    ('num_steps', 0, 'integer >= 1'), ('num_steps', -1, 'integer >= 1'),
    ('num_steps', 2.5, 'integer >= 1'), ('num_steps', True, 'integer >= 1'),
    ('alpha', math.nan, 'finite'), ('alpha', math.inf, 'finite'), ('alpha', 0, '> 0'),
    ('alpha', 'fast', 'a number'), ('num_candidates', 0, 'integer >= 1'),
    ('tolerance', -0.1, '>= 0'), ('candidate_noise', -1, '>= 0'),
    ('candidate_step_scale', 0.5, '>= 1'), ('energy_maps', 1, 'True or False'),
    ('method', 'euler', "['ddpm', 'ddim']"),
])
def test_bad_values_are_refused_by_name(name, value, message):
    with pytest.raises(ThinkingOptionError, match=f'test_cfg.{name} must') as error:
        check_test_cfg({name: value}, [name], 'Model')
    assert message in str(error.value)


def test_good_values_pass_and_none_means_the_default():
    given = dict(num_steps=3, alpha=0.5, num_candidates=2, tolerance=0.0, candidate_noise=0.1,
                 candidate_step_scale=1.0, energy_maps=False, method='ddpm', num_stepz=None)
    with pytest.raises(ThinkingOptionError, match=r"unknown test_cfg key\(s\) \['num_stepz'\]; "
                       r"valid keys: \['alpha', "):
        check_test_cfg(given, [key for key in given if key != 'num_stepz'], 'Model')
    del given['num_stepz']
    assert check_test_cfg(given, given, 'Model') == given
    assert check_test_cfg(dict(num_steps=None), ['num_steps'], 'M') == dict(num_steps=None)
    # An argument of 0 is an error, not "unset" (it used to fall back to test_cfg).
    with pytest.raises(ThinkingOptionError, match='argument.num_steps'):
        resolve_option('num_steps', 0, dict(num_steps=4))
    assert resolve_option('num_steps', None, dict(num_steps=4)) == 4
    assert resolve_thinking(dict(alpha=2.0), num_steps=5) == (5, 2.0, 1, None)
    tensor = torch.tensor([0.5, 1.0])
    assert resolve_option('alpha', tensor, {}) is tensor
    with pytest.raises(ThinkingOptionError, match='everywhere'):
        resolve_option('alpha', torch.tensor([0.5, math.nan]), {})


@pytest.mark.parametrize('model_type, test_cfg', [
    ('EBTDenoiser', dict(num_stepz=3)), ('EBTDenoiser', dict(num_steps=0)),
    ('DiTDenoiser', dict(method='euler')), ('DiTDenoiser', dict(alpha=1.0)),
])
def test_models_check_their_test_cfg(model_type, test_cfg):
    register_all_modules(init_default_scope=False)
    backbone = dict(type='BidirectionalEBT' if model_type == 'EBTDenoiser' else 'DiT',
                    arch=dict(depth=1, num_heads=2, embed_dims=16), img_size=16, patch_size=8)
    config = dict(type=model_type, backbone=backbone, test_cfg=test_cfg)
    if model_type == 'EBTDenoiser':
        config['thinker'] = dict(type='EnergyMinimizer', num_steps=2, alpha=5.0)
    with pytest.raises(ThinkingOptionError, match=model_type):
        MODELS.build(config)
    with pytest.raises(ValueError, match=r'eval_noise_levels must lie in \(0, 1\]'):
        MODELS.build({**config, 'test_cfg': None, 'eval_noise_levels': [0.1, -0.1]})


def test_the_api_refuses_bad_thinking_arguments(tmp_path):
    config, checkpoint = write_denoiser(tmp_path, 'ebt')
    inferencer = DenoiseInferencer(config, checkpoint)
    image = torch.rand(16, 16, 3).numpy()
    for kwargs, message in [(dict(num_steps=0), 'num_steps must be an integer >= 1'),
                            (dict(alpha=math.nan), 'alpha must be finite'),
                            (dict(num_candidates=0), 'num_candidates must be an integer'),
                            (dict(tolerance=-1.0), 'tolerance must be >= 0'),
                            (dict(noise_level=1.5), r'noise_level must lie in \(0, 1\]')]:
        with pytest.raises(ThinkingOptionError, match=message):
            inferencer(image, **kwargs)
    model = inferencer.model
    with pytest.raises(ThinkingOptionError, match='argument.num_steps'):
        model.denoise_by_thinking(torch.zeros(1, 3, 16, 16), num_steps=0)
    assert inferencer(image, num_steps=1).num_steps == 1
