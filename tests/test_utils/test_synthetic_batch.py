"""ebtvision.utils.synthetic_batch: random training batches that fit a config's model."""
import os.path as osp

import pytest
import torch

from ebtvision.utils.synthetic_batch import synthetic_batch
from tests.conftest import ROOT


def test_synthetic_batches_fit_the_models():
    from ebtvision.registry import MODELS
    from ebtvision.utils import read_config, register_all_modules
    register_all_modules()
    models = {}
    for config, kinds in (('ebt_nextframe_skvideo.py', ('pixels', 'latents')),
                          ('transformerpp_text_pydoc.py', ('tokens', ))):
        cfg = read_config(osp.join(ROOT, 'configs', 'quickstart', config))
        torch.manual_seed(0)
        model = models[config] = MODELS.build(cfg.model)
        for kind in kinds:
            data = model.data_preprocessor(synthetic_batch(model, cfg, 3, kind), True)
            if kind == 'tokens':
                assert data['inputs'].shape == (3, cfg.train_dataloader.dataset.seq_len + 1)
                assert data['inputs'].max() < model.head.vocab_size
            else:
                clip = cfg.train_dataloader.dataset.clip_len
                latents = model.encode_inputs(data['inputs'], data['data_samples'])
                assert latents.shape == (3, clip, *model.head.latent_shape)
                if kind == 'pixels':  # uint8 frames scaled to [-1, 1] by the preprocessor
                    assert -1 <= data['inputs'].min() < data['inputs'].max() <= 1
            loss, _ = model.parse_losses(model(**data, mode='loss'))
            assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="takes pixels or latents inputs, not 'images'"):
        synthetic_batch(models['ebt_nextframe_skvideo.py'], cfg, 1, 'images')
