"""Causal Transformer++ backbone: causal, and the trunk of the causal EBT."""
import torch
from conftest import TWO_BLOCK_CAUSAL_ARCH as ARCH

from ebtvision.models import CausalEBT


def test_causal_transformer_is_causal_and_shares_the_trunk():
    from ebtvision.models import CausalTransformer
    torch.manual_seed(0)
    net = CausalTransformer(arch=ARCH)
    real = torch.randn(1, 5, 16)
    base = net(real)
    changed = real.clone()
    changed[:, 3] += 2.0
    out = net(changed)
    torch.testing.assert_close(out[:, :3], base[:, :3])  # the past never sees the future
    assert not torch.allclose(out[:, 3:], base[:, 3:])
    ebt = CausalEBT(arch=ARCH)
    assert isinstance(ebt, CausalTransformer)
    assert set(net.state_dict()) < set(ebt.state_dict())
