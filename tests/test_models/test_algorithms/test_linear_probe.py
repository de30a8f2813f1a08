"""LinearProbe: frozen backbone features, DiT fed t = 0, denoiser checkpoints load by name."""
import pytest
import torch
from conftest import TINY_IMAGE_BACKBONE as BACKBONE
from mmengine.runner import load_checkpoint, save_checkpoint

from ebtvision.models import EBTDenoiser, LinearProbe
from ebtvision.structures import ClassifyDataSample


def probe(kind='BidirectionalEBT', **kwargs):
    torch.manual_seed(0)
    return LinearProbe(backbone=dict(type=kind, **BACKBONE), num_classes=3, **kwargs)


def test_features_are_the_mean_final_patch_tokens():
    model = probe()
    x = torch.randn(2, 3, 16, 16)
    features = model.extract_features(x)
    assert features.shape == (2, 16) and model.num_features == 16
    torch.testing.assert_close(features, model.backbone.forward_features(x).mean(1))


def test_dit_is_fed_t_zero():
    model = probe('DiT', feature_kwargs=dict(t=0))
    with torch.no_grad():  # adaLN-Zero starts blind to t; make the timestep matter
        for param in model.backbone.parameters():
            param.add_(0.1 * torch.randn_like(param))
    x = torch.randn(2, 3, 16, 16)
    expected = model.backbone.forward_features(x, t=torch.zeros(2, dtype=torch.long)).mean(1)
    torch.testing.assert_close(model.extract_features(x), expected)
    other = model.backbone.forward_features(x, t=torch.full((2, ), 50)).mean(1)
    assert not torch.allclose(expected, other)


def test_backbone_is_frozen_and_only_the_head_learns():
    model = probe().train()
    assert not model.backbone.training
    samples = [ClassifyDataSample(metainfo=dict(gt_label=i % 3)) for i in range(4)]
    loss = model(torch.randn(4, 3, 16, 16), samples, mode='loss')['loss']
    loss.backward()
    assert model.head.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    out = model(torch.randn(4, 3, 16, 16), samples, mode='predict')
    torch.testing.assert_close(out[0].pred_score.sum(), torch.tensor(1.0))
    assert out[0].pred_label == int(out[0].pred_score.argmax())
    assert len(model(torch.randn(2, 3, 16, 16), mode='predict')) == 2  # no samples given
    # Plain dict samples work too (labels of a hand-written train loop).
    loss = model(torch.randn(2, 3, 16, 16), [dict(gt_label=0), dict(gt_label=2)], mode='loss')
    assert loss['loss'].requires_grad
    with pytest.raises(KeyError, match='gt_label'):
        model(torch.randn(1, 3, 16, 16), [dict()], mode='loss')
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(torch.randn(1, 3, 16, 16), mode='nope')


def test_a_denoiser_checkpoint_loads_into_the_probe(tmp_path):
    torch.manual_seed(3)
    denoiser = EBTDenoiser(backbone=dict(type='BidirectionalEBT', **BACKBONE),
                           thinker=dict(type='EnergyMinimizer', alpha=2.0))
    path = str(tmp_path / 'ebt.pth')
    save_checkpoint(denoiser.state_dict(), path)  # mmengine's own checkpoint format
    model = probe()
    model.init_weights()  # what the runner does before load_from
    load_checkpoint(model, path, map_location='cpu')  # strict=False: extra keys only logged
    expected = {k[len('backbone.'):]: v for k, v in denoiser.state_dict().items()
                if k.startswith('backbone.')}
    loaded = model.backbone.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value)
    assert any(not k.startswith('backbone.') for k in denoiser.state_dict())  # e.g. thinker
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model.extract_features(x),
                               denoiser.backbone.forward_features(x).mean(1))


def test_other_layers_are_concatenated():
    model = LinearProbe(backbone=dict(type='BidirectionalEBT', **dict(
        BACKBONE, arch=dict(depth=2, num_heads=2, embed_dims=16))), num_classes=3,
        layers=(-1, 0))
    x = torch.randn(2, 3, 16, 16)
    features = model.extract_features(x)
    assert features.shape == (2, 32) and model.num_features == 32
    torch.testing.assert_close(features[:, :16], model.backbone.forward_features(x).mean(1))
    tokens = model.backbone.patch_embed(x) + model.backbone.pos_embed
    first = model.backbone.blocks[0](tokens, model.backbone.learned_condition)
    torch.testing.assert_close(features[:, 16:], first.mean(1))
    with pytest.raises(ValueError, match='outside'):
        LinearProbe(backbone=dict(type='BidirectionalEBT', **BACKBONE), num_classes=3,
                    layers=(5, ))


def test_max_pool_int_t_and_bad_arguments():
    model = probe(pool='max')
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model.extract_features(x),
                               model.backbone.forward_features(x).amax(1))
    with pytest.raises(ValueError, match='pool'):
        probe(pool='cls')
    with pytest.raises(ValueError, match='data_samples'):
        model(x, mode='loss')


def test_probe_level_init_cfg_leaves_the_backbone_alone():
    model = probe(init_cfg=dict(type='Constant', layer='Linear', val=0.5, bias=0.0))
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.init_weights()
    assert torch.all(model.head.weight == 0.5)
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, before[key])
