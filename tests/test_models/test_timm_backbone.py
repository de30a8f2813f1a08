"""TimmBackbone: local weights only, tokens for the probe, [-1, 1] inputs normalised."""
import pytest
import torch

from ebtvision.models import LinearProbe, TimmBackbone


def test_tokens_local_weights_and_missing_file(tmp_path):
    torch.manual_seed(0)
    source = TimmBackbone('vit_tiny_patch16_224', img_size=32).eval()
    path = str(tmp_path / 'vit.pth')
    torch.save(source.model.state_dict(), path)
    torch.manual_seed(1)
    loaded = TimmBackbone('vit_tiny_patch16_224', pretrained_path=path, img_size=32).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    tokens = loaded.forward_features(x)
    assert tokens.shape == (2, 4, 192)  # 2x2 patches, the class token left out
    torch.testing.assert_close(tokens, source.forward_features(x))
    with pytest.raises(FileNotFoundError, match='Nothing is downloaded'):
        TimmBackbone('vit_tiny_patch16_224', pretrained_path=str(tmp_path / 'no.pth'))


def test_cnn_feature_maps_become_tokens_in_a_probe():
    torch.manual_seed(0)
    model = LinearProbe(backbone=dict(type='TimmBackbone', model_name='resnet10t'),
                        num_classes=4).eval()
    assert model.extract_features(torch.zeros(2, 3, 64, 64)).shape == (2, 512)
