"""Mixed precision on CPU: FiniteCheckAmpOptimWrapper with bfloat16 (no scaler) and
float16 (GradScaler), an EBT training step close to float32's, the dtype checks."""
import re

import pytest
import torch
from mmengine.logging import MessageHub

from ebtvision.engine import (FiniteCheckAmpOptimWrapper, FiniteCheckOptimWrapper,
                              NonFiniteError, check_amp_dtype, default_amp_dtype)
from ebtvision.models import BidirectionalEBT, EnergyMinimizer, trajectory_loss


@pytest.fixture(autouse=True)
def _fresh_message_hub(request):
    MessageHub.get_instance(f'amp_{request.node.name}')


class TinyEBT(torch.nn.Module):
    """A one-block EBT denoiser: two thinking steps from the noisy image."""

    def __init__(self):
        super().__init__()
        self.backbone = BidirectionalEBT(arch=dict(depth=1, num_heads=2, embed_dims=16),
                                         img_size=8, patch_size=4, in_channels=1)
        self.thinker = EnergyMinimizer(num_steps=2, alpha=2.0)
        with torch.no_grad():  # adaLN-Zero would start every energy gradient at zero
            for param in self.backbone.parameters():
                param.add_(0.2 * torch.randn_like(param))

    def forward(self, noisy, clean):
        trajectory = self.thinker(lambda y, step: self.backbone(y), noisy)
        self.energy_dtype = trajectory.energies[0].dtype
        return trajectory_loss(trajectory, clean, torch.nn.functional.mse_loss, False)


def train(wrapper_type, steps=4, **kwargs):
    """Losses of ``steps`` updates of TinyEBT (same seed, same data for every wrapper)."""
    torch.manual_seed(0)
    model = TinyEBT().train()
    wrapper = wrapper_type(optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
                           clip_grad=dict(max_norm=1.0), **kwargs)
    clean = torch.rand(4, 1, 8, 8) * 2 - 1
    noisy = clean + 0.3 * torch.randn_like(clean)
    losses = []
    for _ in range(steps):
        with wrapper.optim_context(model):
            loss = model(noisy, clean)
        wrapper.update_params(loss)
        losses.append(float(loss.detach()))
    return model, wrapper, torch.tensor(losses)


def test_bfloat16_step_on_cpu_is_finite_and_close_to_float32():
    _, _, reference = train(FiniteCheckOptimWrapper)
    model, wrapper, losses = train(FiniteCheckAmpOptimWrapper, dtype='bfloat16')
    assert model.energy_dtype == torch.bfloat16  # autocast really ran
    assert not wrapper.loss_scaler.is_enabled()  # bfloat16 needs no loss scaling
    assert torch.isfinite(losses).all() and wrapper.skipped_steps == 0
    assert reference[-1] < reference[0]  # it trains, and so does bfloat16
    torch.testing.assert_close(losses, reference, rtol=1e-2, atol=1e-3)
    # the default dtype on CPU is bfloat16 too, for --amp and for the wrapper
    assert default_amp_dtype('cpu') == 'bfloat16'
    assert train(FiniteCheckAmpOptimWrapper, steps=1)[1].cast_dtype == torch.bfloat16


def test_float16_on_cpu_scales_the_loss_and_stays_close_to_float32():
    _, _, reference = train(FiniteCheckOptimWrapper)
    model, wrapper, losses = train(FiniteCheckAmpOptimWrapper, dtype='float16')
    assert model.energy_dtype == torch.float16
    assert wrapper.loss_scaler.is_enabled()
    assert torch.isfinite(losses).all()
    torch.testing.assert_close(losses, reference, rtol=5e-3, atol=1e-3)


def test_a_nonfinite_energy_gradient_does_not_end_a_float16_run():
    # Non-finite even in float32 (a NaN weight): under float16 the thinking loop passes it
    # on and the wrapper skips the step; under bfloat16 it is divergence and stops.
    for dtype in ('float16', 'bfloat16'):
        torch.manual_seed(0)
        model = TinyEBT().train()
        with torch.no_grad():
            model.backbone.final_layer.linear.weight[0, 0] = float('nan')
        wrapper = FiniteCheckAmpOptimWrapper(
            optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3), dtype=dtype)
        clean = torch.zeros(2, 1, 8, 8)

        def step():
            with wrapper.optim_context(model):
                loss = model(clean + 0.1, clean)
            wrapper.update_params(loss)

        if dtype == 'float16':
            step()
            assert wrapper.skipped_steps == 1 and wrapper.loss_scaler.get_scale() == 2.0**16
        else:
            with pytest.raises(FloatingPointError, match='non-finite energy gradient'):
                step()


def nan_loss_update(wrapper):
    model = torch.nn.Linear(2, 1)
    with wrapper.optim_context(model):
        loss = model(torch.ones(1, 2)).sum() * float('nan')
    wrapper.update_params(loss)


def test_only_float16_tolerates_a_nonfinite_loss():
    # float16 overflows now and then: skipped. bfloat16 has float32's range: divergence.
    for dtype, tolerated in (('float16', True), ('bfloat16', False)):
        wrapper = FiniteCheckAmpOptimWrapper(
            optimizer=torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1),
            dtype=dtype)
        if tolerated:
            nan_loss_update(wrapper)
            assert wrapper.skipped_steps == 1
        else:
            with pytest.raises(NonFiniteError, match='the loss is nan'):
                nan_loss_update(wrapper)


def test_bfloat16_nonfinite_gradient_is_refused_like_float32():
    model = torch.nn.Linear(2, 1)
    wrapper = FiniteCheckAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                         dtype='bfloat16', nonfinite='skip')
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        loss = torch.sqrt(model(torch.zeros(1, 2)) * 0).sum()  # 0, with a NaN gradient
    wrapper.update_params(loss)
    assert torch.equal(model.weight, before) and wrapper.skipped_steps == 1


def test_a_bfloat16_checkpoint_resumes_with_float16():
    model = torch.nn.Linear(2, 1)
    saved = FiniteCheckAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                       dtype='bfloat16').state_dict()
    assert saved['loss_scaler'] == {}
    resumed = FiniteCheckAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                         dtype='float16', loss_scale=dict(init_scale=8.0))
    resumed.load_state_dict(saved)
    assert resumed.loss_scaler.get_scale() == 8.0  # a fresh scaler


@pytest.mark.parametrize('dtype, message', [
    ('float32', "must be one of ('bfloat16', 'float16'), got 'float32'"),
    ('fp8', "got 'fp8'"),
])
def test_wrong_dtype_is_one_clear_error(dtype, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_amp_dtype(dtype, 'cpu')
    assert check_amp_dtype(torch.float16, 'cpu') == torch.float16
