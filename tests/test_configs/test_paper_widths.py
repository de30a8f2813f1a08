"""The paper-setting configs use the reference's MLP widths (hidden size = model width).

The reference's image jobs pass ``--ffn_dim_multiplier 1``; its video jobs leave it unset,
which makes the SwiGLU hidden size the width. The quick-starts keep their own ratio.
"""
import pytest
from mmengine.config import Config
from torch import nn

from ebtvision.models.backbones.arch_settings import resolve_arch
from ebtvision.registry import MODELS
from ebtvision.utils import register_all_modules

PAPER_CONFIGS = ['configs/ebt_coco_denoise.py', 'configs/dit_coco_denoise.py',
                 'configs/ebt_ssv2_nextframe.py', 'configs/ebt_ssv2_nextframe_s2.py',
                 'configs/ebt_ssv2_nextframe_cached.py',
                 'configs/transformerpp_ssv2_nextframe.py']


def one_block_backbone(config: str) -> nn.Module:
    """The config's backbone at its real width, one block deep (cheap to build)."""
    register_all_modules(init_default_scope=False)
    backbone = dict(Config.fromfile(config).model.backbone)
    backbone['arch'] = dict(resolve_arch(backbone['arch']), depth=1)
    return MODELS.build(backbone)


@pytest.mark.parametrize('config', PAPER_CONFIGS)
def test_paper_configs_mlp_hidden_is_the_width(config):
    backbone = one_block_backbone(config)
    width = backbone.embed_dims
    hidden = {layer.out_features for name, layer in backbone.named_modules()
              if isinstance(layer, nn.Linear) and '.mlp.' in f'.{name}.'
              and layer.in_features == width}
    assert hidden == {width}, (config, width, hidden)


def test_quick_starts_keep_their_wider_mlps():
    backbone = one_block_backbone('configs/quickstart/ebt_denoise_skimage.py')
    assert backbone.blocks[0].mlp[0].out_features == 4 * backbone.embed_dims


@pytest.mark.parametrize('probe, trained', [
    ('configs/linear_probe/ebt_imagenet_linear.py', 'configs/ebt_coco_denoise.py'),
    ('configs/linear_probe/dit_imagenet_linear.py', 'configs/dit_coco_denoise.py'),
])
def test_probes_build_the_backbone_their_checkpoints_hold(probe, trained):
    """A probe loads a paper checkpoint's backbone: every weight must have its shape."""
    ours, theirs = one_block_backbone(probe), one_block_backbone(trained)
    shapes = {name: tuple(value.shape) for name, value in theirs.state_dict().items()}
    assert {name: tuple(value.shape) for name, value in ours.state_dict().items()} == shapes
