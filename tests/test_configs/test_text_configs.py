"""The language configs: the paper's S1 text setting, same trunk for both models, an OOD
test split, and one training step of each on its real data."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from ebtvision.datasets.text import max_depth_of
from ebtvision.registry import DATASETS, MODELS
from ebtvision.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = ['ebt_text_dyck.py', 'transformerpp_text_dyck.py', 'quickstart/ebt_text_pydoc.py',
           'quickstart/transformerpp_text_pydoc.py']


def load(name):
    return Config.fromfile(osp.join(ROOT, 'configs', name))


def test_ebt_uses_the_papers_s1_text_setting_and_the_baseline_the_same_trunk():
    ebt, tpp = load('ebt_text_dyck.py'), load('transformerpp_text_dyck.py')
    assert ebt.model.thinker.alpha == 500 and ebt.model.thinker.num_steps == 2
    assert ebt.optim_wrapper.constructor == 'ThinkerAlphaOptimWrapperConstructor'  # 1500
    assert ebt.model.backbone.arch == tpp.model.backbone.arch
    assert ebt.train_dataloader == tpp.train_dataloader and ebt.train_cfg == tpp.train_cfg


def test_the_dyck_test_split_is_out_of_distribution():
    register_all_modules()
    cfg = load('ebt_text_dyck.py')
    train = DATASETS.build(dict(cfg.train_dataloader.dataset, num_samples=300))
    test = DATASETS.build(cfg.test_dataloader.dataset)
    train_len = max(len(train.get_data_info(i)['prefix']) for i in range(len(train)))
    test_len = min(len(test.get_data_info(i)['prefix']) for i in range(len(test)))
    assert test_len > train_len
    assert max(max_depth_of(test.get_data_info(i)['prefix']) for i in range(len(test))) > \
        cfg.train_dataloader.dataset.max_depth


@pytest.mark.parametrize('name', CONFIGS)
def test_one_training_step_on_the_real_data(name):
    register_all_modules()
    cfg = load(name)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(2)]), True)
    logs = model(**data, mode='loss')
    logs['loss'].backward()
    assert torch.isfinite(logs['loss']) and model.head.token_embed.weight.grad is not None
