"""TimmBackbone: local weights only, tokens for the probe, [-1, 1] inputs normalised."""
import pytest
import torch
from safetensors.torch import save_file

from ebtvision.models import LinearProbe, TimmBackbone


def test_tokens_local_weights_and_missing_file(tmp_path):
    torch.manual_seed(0)
    source = TimmBackbone('vit_tiny_patch16_224', img_size=32).eval()
    path = str(tmp_path / 'vit.pth')
    torch.save(source.model.state_dict(), path)
    torch.manual_seed(1)
    loaded = TimmBackbone('vit_tiny_patch16_224', pretrained_path=path, img_size=32).eval()
    assert loaded.num_features == loaded.embed_dims == 192
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    tokens = loaded.forward_features(x)
    assert tokens.shape == (2, 4, 192)  # 2x2 patches, the class token left out
    torch.testing.assert_close(tokens, source.forward_features(x))
    # [-1, 1] inputs reach the timm model in its own (ImageNet) normalisation.
    mean = torch.tensor(loaded.model.pretrained_cfg['mean']).view(1, 3, 1, 1)
    std = torch.tensor(loaded.model.pretrained_cfg['std']).view(1, 3, 1, 1)
    direct = loaded.model.forward_features(((x + 1) / 2 - mean) / std)[:, 1:]
    torch.testing.assert_close(tokens, direct)
    with pytest.raises(FileNotFoundError, match='Nothing is downloaded'):
        TimmBackbone('vit_tiny_patch16_224', pretrained_path=str(tmp_path / 'no.pth'),
                     img_size=32)


def test_safetensors_and_incomplete_weights(tmp_path):
    torch.manual_seed(0)
    source = TimmBackbone('resnet10t').eval()
    path = str(tmp_path / 'r.safetensors')
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, path)
    loaded = TimmBackbone('resnet10t', pretrained_path=path).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded.forward_features(x), source.forward_features(x))
    partial = str(tmp_path / 'partial.pth')
    torch.save({k: v for k, v in source.model.state_dict().items() if 'fc' not in k
                and not k.startswith('layer4')}, partial)
    with pytest.raises(KeyError, match='lacks'):
        TimmBackbone('resnet10t', pretrained_path=partial)


def test_cnn_feature_maps_become_tokens_in_a_probe():
    torch.manual_seed(0)
    model = LinearProbe(backbone=dict(type='TimmBackbone', model_name='resnet10t'),
                        num_classes=4).eval()
    assert model.extract_features(torch.zeros(2, 3, 64, 64)).shape == (2, 512)


class _Stub(torch.nn.Module):
    def __init__(self, out, output_fmt='NCHW'):
        super().__init__()
        self.out, self.output_fmt = out, output_fmt

    def forward_features(self, x):
        return self.out


def test_nhwc_and_pooled_outputs():
    backbone = TimmBackbone('resnet10t')
    nhwc = torch.randn(2, 3, 5, 8)  # (B, h, w, C), e.g. timm's Swin
    backbone.model = _Stub(nhwc, 'NHWC')
    torch.testing.assert_close(backbone.forward_features(torch.zeros(2, 3, 8, 8)),
                               nhwc.reshape(2, 15, 8))
    pooled = torch.randn(2, 8)
    backbone.model = _Stub(pooled)
    assert backbone.forward_features(torch.zeros(2, 3, 8, 8)).shape == (2, 1, 8)
