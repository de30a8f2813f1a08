"""The optimizer of every training config: the schedules' ThinkerAlphaOptimWrapperConstructor
gives the same param groups (lr, weight decay per parameter) as the hand-kept
``custom_keys={'thinker.alpha': dict(lr_mult=..., decay_mult=0.0)}`` the EBT configs had, and
MMEngine's default groups to the models without a thinker."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from ebtvision.engine.optimizers import ThinkerAlphaOptimWrapperConstructor
from ebtvision.registry import MODELS
from ebtvision.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and 'linear_probe' not in p and osp.join('configs', 'scaling') not in p)
# The multipliers the configs kept by hand next to their thinker's alpha before the
# constructor derived them (3 x alpha): lr(alpha) = lr_mult * optimizer.lr.
LEGACY_LR_MULT = {
    'ebt_coco_denoise.py': 9000.0,  # alpha 3000, lr 1e-4
    'ebt_ssv2_nextframe.py': 90000.0,  # alpha 30000, lr 4e-4
    'ebt_ssv2_nextframe_cached.py': 90000.0,  # (inherited)
    'ebt_text_dyck.py': 1500.0,  # alpha 500, lr 1e-3
    'quickstart/ebt_denoise_skimage.py': 9000.0,  # alpha 3000, lr 1e-3
    'quickstart/ebt_denoise_skimage_replay.py': 9000.0,  # (inherited)
    'quickstart/ebt_nextframe_skvideo.py': 300.0,  # alpha 100, lr 1e-3
    'quickstart/ebt_text_pydoc.py': 1500.0,  # alpha 500, lr 1e-3
}
# EBT configs whose alpha is not learned (no alpha group): the reference's S2 video job
# (job_scripts/vid/pretrain/ebt_s2_vae.sh) does not pass --mcmc_step_size_learnable.
FIXED_ALPHA = ('ebt_ssv2_nextframe_s2.py', )
TINY_ARCH = dict(depth=1, num_heads=2, embed_dims=16)


def load(name):
    return Config.fromfile(osp.join(ROOT, 'configs', name))


def tiny_model(cfg):
    """The config's model with a one-layer trunk (and pixel patches instead of the VAE):
    the same parameter names, thinker and alpha, built in well under a second."""
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, arch=TINY_ARCH)
    if model_cfg.get('encoder', {}).get('type') == 'FrozenVAEEncoder':
        model_cfg.encoder = dict(type='PixelPatchEncoder', patch_size=4)
        model_cfg.frame_size = 32
    torch.manual_seed(0)
    return MODELS.build(model_cfg)


def param_groups(wrapper, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return [([names[id(p)] for p in g['params']], {k: v for k, v in g.items() if k != 'params'})
            for g in wrapper.optimizer.param_groups]


def test_every_ebt_config_is_covered_and_the_rule_reproduces_it():
    for name, lr_mult in LEGACY_LR_MULT.items():
        cfg = load(name)
        assert cfg.model.thinker.learnable_alpha, name
        rule = ThinkerAlphaOptimWrapperConstructor.alpha_lr_mult_per_alpha
        assert rule * cfg.model.thinker.alpha == lr_mult, name


@pytest.mark.parametrize('name', TRAIN_CONFIGS)
def test_constructor_gives_the_hand_kept_param_groups(name):
    register_all_modules()
    cfg = load(name)
    assert cfg.optim_wrapper.constructor == 'ThinkerAlphaOptimWrapperConstructor'
    assert 'paramwise_cfg' not in cfg.optim_wrapper  # alpha's lr is derived, not repeated
    assert ('thinker' in cfg.model) == (name in LEGACY_LR_MULT or name in FIXED_ALPHA)
    if name in FIXED_ALPHA:
        assert not cfg.model.thinker.learnable_alpha
    model = tiny_model(cfg)
    new = param_groups(build_optim_wrapper(model, cfg.optim_wrapper.to_dict()), model)
    old_cfg = cfg.optim_wrapper.to_dict()
    old_cfg.pop('constructor')
    if name in LEGACY_LR_MULT:
        old_cfg['paramwise_cfg'] = dict(custom_keys={
            'thinker.alpha': dict(lr_mult=LEGACY_LR_MULT[name], decay_mult=0.0)})
    old = param_groups(build_optim_wrapper(model, old_cfg), model)
    assert new == old
    if name in LEGACY_LR_MULT:
        alpha = [g for names, g in new if names == ['thinker.alpha']]
        assert alpha and alpha[0]['lr'] == cfg.optim_wrapper.optimizer.lr * LEGACY_LR_MULT[name]
        assert alpha[0]['weight_decay'] == 0.0
    else:
        assert len(new) == 1  # MMEngine's single group


PAPER_SCHEDULE_CONFIGS = ['configs/ebt_coco_denoise.py', 'configs/dit_coco_denoise.py',
                          'configs/ebt_ssv2_nextframe.py', 'configs/ebt_ssv2_nextframe_s2.py',
                          'configs/transformerpp_ssv2_nextframe.py']


def test_paper_configs_follow_the_reference_schedule():
    """The reference's jobs warm up from ~0 over 10k steps, then follow a cosine laid out
    over 1M steps down to lr / 10, of which 100k are trained (WarmUpCosineAnnealingLR with
    --max_scheduling_steps 1000000 --min_lr_scale 10)."""
    import math

    from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
    schedules = {str(Config.fromfile(path).param_scheduler) for path in PAPER_SCHEDULE_CONFIGS}
    assert len(schedules) == 1  # every paper config uses the schedule base's
    cfg = Config.fromfile(PAPER_SCHEDULE_CONFIGS[0])
    peak = 1e-4
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=peak)
    built = {'LinearLR': LinearLR, 'CosineAnnealingLR': CosineAnnealingLR}
    schedulers = [built[s['type']](optimizer, **{k: v for k, v in s.items() if k != 'type'})
                  for s in cfg.param_scheduler]
    seen = {}
    for step in range(100000):
        if step in (0, 9999, 50000, 99999):
            seen[step] = optimizer.param_groups[0]['lr']
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()

    def reference(step):  # the lr of 0-based step ``step`` in the reference
        if step < 10000:
            return peak * (step + 1) / 10000
        return peak / 10 + (peak - peak / 10) * (1 + math.cos(math.pi * (step - 9999) /
                                                              990000)) / 2
    for step, lr in seen.items():
        assert lr == pytest.approx(reference(step), rel=2e-3, abs=1e-9), step
    assert seen[99999] == pytest.approx(0.982 * peak, rel=1e-3)


# The global batch each paper config's lr is for (auto_scale_lr.base_batch_size, used by
# tools/train.py --auto-scale-lr): the reference job's batch_size_per_device x GPUs x
# accumulate_grad_batches; the Dyck quick-starts' own batch (their lr is not the job's).
PAPER_BASE_BATCH = {
    'ebt_coco_denoise.py': 128,  # job_scripts/img/pretrain_denoising/ebt_s1.sh: 128 x 1 x 1
    'dit_coco_denoise.py': 128,  # .../pretrain_denoising/dit.sh: 128 x 1 x 1
    'ebt_ssv2_nextframe.py': 256,  # job_scripts/vid/pretrain/ebt_s1_vae.sh: 16 x 4 x 4
    'ebt_ssv2_nextframe_cached.py': 256,  # (inherited: the same job)
    'ebt_ssv2_nextframe_s2.py': 256,  # .../ebt_s2_vae.sh: 32 x 4 x 2
    'transformerpp_ssv2_nextframe.py': 256,  # .../baseline_transformer_vae.sh: 16 x 4 x 4
    'ebt_text_dyck.py': 32,
    'transformerpp_text_dyck.py': 32,
}


def test_every_paper_config_names_the_batch_of_its_lr():
    paper = sorted(osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', '*.py')))
    assert paper == sorted(PAPER_BASE_BATCH)
    for name, base in PAPER_BASE_BATCH.items():
        cfg = load(name)
        # Off unless asked for: the configs train as written.
        assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=base), name
        assert base % cfg.train_dataloader.batch_size == 0, name  # whole per-GPU batches
