"""The paper's model sizes (ARCH_SETTINGS, resolve_arch)."""
import pytest

from ebtvision.models import ARCH_SETTINGS, BidirectionalEBT, resolve_arch


def test_paper_sizes():
    assert resolve_arch('large') == dict(depth=24, num_heads=16, embed_dims=1536)
    assert resolve_arch('xs') == dict(depth=12, num_heads=6, embed_dims=384)
    assert list(ARCH_SETTINGS) == ['4xs', '3xs', 'xxs', 'xs', 'small', 'medium', 'large', 'xl']
    with pytest.raises(KeyError, match='unknown arch'):
        resolve_arch('huge')
    with pytest.raises(ValueError, match='divisible'):
        BidirectionalEBT(arch='xs', img_size=30, patch_size=8)
