"""Every shipped config parses; the denoising configs carry the paper's settings and build."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from ebtvision.registry import DATASETS, MODELS
from ebtvision.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Run configs only: bases are fragments, and configs/scaling/ holds sweeps, not runs
# (tests/test_tools/test_scaling.py checks those).
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p and osp.join('configs', 'scaling') not in p)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'ebtvision'
    if 'linear_probe' in path:  # evaluation only: tools/test.py runs the probe
        assert cfg.test_cfg.type == 'LinearProbeLoop' and cfg.model.type == 'LinearProbe'
        return
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'  # --cfg-options train_cfg.max_iters=N
    expected = (('nextframe/smooth_l1', 'less') if 'nextframe' in path else
                ('text/perplexity', 'less') if '_text_' in path else
                ('denoise/psnr@0.1', 'greater'))
    checkpoint = cfg.default_hooks.checkpoint
    assert (checkpoint.save_best, checkpoint.get('rule', 'greater')) == expected


@pytest.mark.parametrize('name', ['ebt', 'dit'])
def test_coco_configs_use_the_paper_setting(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', f'{name}_coco_denoise.py'))
    assert cfg.model.backbone.arch == 'large'
    assert (cfg.model.backbone.img_size, cfg.model.backbone.patch_size) == (128, 16)
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    # The reference's DiT job trains without weight decay (job_scripts/.../dit.sh).
    assert cfg.optim_wrapper.optimizer.weight_decay == (0.01 if name == 'ebt' else 0.0)
    assert cfg.optim_wrapper.clip_grad.max_norm == 1.0
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.train_cfg.max_iters == 100000
    assert cfg.param_scheduler[0].end == 10000  # warm-up
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/train2014'
    # The reference noises test images on the stretched schedule for both models, and
    # both must see the same inputs.
    assert cfg.model.stretch_eval_noise is True
    if name == 'ebt':
        assert cfg.model.thinker.alpha == 3000 and cfg.model.thinker.num_steps == 1
        assert cfg.model.thinker.learnable_alpha
        assert cfg.optim_wrapper.constructor == 'ThinkerAlphaOptimWrapperConstructor'  # 9000
    else:
        assert cfg.model.test_cfg.num_steps == 100
        assert cfg.model.backbone.learn_sigma


@pytest.mark.parametrize('name', ['ebt', 'dit'])
def test_quickstart_builds_on_bundled_photos(name):
    register_all_modules()  # default scope, as the runner sets it (ConcatDataset needs it)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'quickstart', f'{name}_denoise_skimage.py'))
    model = MODELS.build(cfg.model)
    assert model.backbone.depth == 2 and model.eval_noise_levels == [0.1, 0.2]
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    train_names = {osp.basename(info['img_path']) for info in train.load_data_list()}
    val_names = {osp.basename(val[i]['data_samples'].img_path) for i in range(len(val))}
    assert len(val) == 8 and not train_names & val_names  # held-out photos
    assert train[0]['inputs'].shape == (3, 64, 64)
