"""tools/analysis/model_size.py: parameter counts, FLOPs through the thinking loop by phase,
peak activation memory with and without checkpointing."""
import json
import os.path as osp
import sys

import pytest
import torch
from torch import nn

from tests.conftest import ROOT, run_tool

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import model_size  # noqa: E402

TINY = dict(depth=2, num_heads=2, embed_dims=32)
pytestmark = pytest.mark.usefixtures('single_thread')  # tiny models: threads only contend


def tiny_model(config, arch=TINY, **options):
    """The config's model with a small trunk (and ``options`` merged into ``model``), in
    training mode, and its one-sample batch."""
    from ebtvision.utils import read_config
    cfg = read_config(osp.join(ROOT, 'configs', config))
    cfg.model.backbone.arch = arch
    cfg.merge_from_dict({f'model.{key}': value for key, value in options.items()})
    torch.manual_seed(0)
    model, batch, _ = model_size.build_with_batch(cfg)
    return model.train(), batch


def step_and_forward(model, batch, samples=2):
    batch = model_size.repeat_batch(batch, samples)
    step = model_size.measure_step(model, batch)
    forward = model_size.flops_of(lambda: model_size.network_forward(model, batch))
    return step, forward


def test_flops_follow_torchs_formulas_also_inside_autograd_grad():
    layer = nn.Linear(8, 4, bias=False)
    x = torch.randn(2, 8)
    assert model_size.flops_of(lambda: layer(x)) == 2 * 2 * 8 * 4

    def energy_gradient():  # what an EBT does: a gradient w.r.t. a leaf input
        candidate = x.clone().requires_grad_()
        torch.autograd.grad(layer(candidate).sum(), candidate, create_graph=True)

    # forward matmul, then the backward matmul for the input gradient
    assert model_size.flops_of(energy_gradient) == 2 * (2 * 2 * 8 * 4)


def test_each_phase_counts_its_own_matmul():
    layer = nn.Linear(8, 4, bias=False)
    candidate = torch.randn(2, 8, requires_grad=True)
    counter = model_size.FlopCounter()
    with counter:
        energy = layer(candidate).sum()  # forward: x W^T
        grad, = torch.autograd.grad(energy, candidate, create_graph=True)  # 1 W, no dW
        loss = (candidate - grad).pow(2).sum()
        counter.in_backward = True
        loss.backward()  # dL/dW through the energy gradient's matmul: one matmul
    matmul = 2 * 2 * 8 * 4
    assert counter.flops == dict(forward=matmul, energy_grad=matmul, backward=matmul)
    assert layer.weight.grad is not None


def test_attention_counts_on_cpu_kernels_too():
    q = torch.randn(1, 2, 16, 8, requires_grad=True)
    flops = model_size.flops_of(
        lambda: nn.functional.scaled_dot_product_attention(q, q, q).sum().backward())
    matmul = 2 * 2 * 16 * 16 * 8  # one of Q K^T, P V for 2 heads
    assert flops == 2 * matmul + 5 * matmul  # torch's backward formula: 5 (QK^T again)


def test_parameter_counts_leave_out_input_embeddings():
    model = nn.Module()
    model.token_embed = nn.Embedding(10, 4)
    model.proj = nn.Linear(4, 4)
    model.proj.requires_grad_(False)
    assert model_size.count_parameters(model) == dict(params=60, trainable=40,
                                                      non_embedding=20)


@pytest.mark.parametrize('config', ['quickstart/dit_denoise_skimage.py',
                                    'transformerpp_text_dyck.py'])
def test_a_first_order_step_is_a_forward_and_a_backward_of_twice_its_cost(config):
    model, batch = tiny_model(config)
    step, forward = step_and_forward(model, batch)
    flops = step['flops']
    assert flops['energy_grad'] == 0
    assert flops['forward'] == pytest.approx(forward, rel=0.05)
    assert flops['backward'] == pytest.approx(2 * flops['forward'], rel=0.1)


@pytest.mark.parametrize('steps', [1, 3])
def test_an_ebt_step_runs_one_network_forward_per_thinking_step(steps):
    model, batch = tiny_model('quickstart/ebt_denoise_skimage.py',
                              thinker=dict(num_steps=steps))
    step, forward = step_and_forward(model, batch)
    flops = step['flops']
    assert flops['forward'] == pytest.approx(steps * forward, rel=0.02)
    # the energy gradient is a first-order backward of each forward, the outer backward
    # differentiates through both
    assert flops['forward'] < flops['energy_grad'] < flops['backward']
    # the phases are the whole step, counted once
    total = model_size.flops_of(lambda: model_size.training_step(
        model, model_size.repeat_batch(batch, 2)))
    assert sum(flops.values()) == total


def test_live_memory_follows_allocations_and_frees():
    memory = model_size.LiveMemory()
    with memory:
        a = torch.ones(1000)  # 4000 bytes
        view = a[10:]  # shares a's storage: no allocation
        b = a * 2  # 4000
        del a  # the view keeps the storage
        c = torch.ones(500)  # 2000: the peak, 10000
        del view, b
        d = c + 1  # 2000
    memory.stop()
    assert memory.curve() == [4000, 8000, 10000, 6000, 2000, 4000]
    assert memory.allocation_of(d) == 3  # a, b, c, d
    assert memory.curve(exclude={memory.allocation_of(c)}) == [4000, 8000, 8000, 4000, 0,
                                                              2000]


def test_live_memory_peak_is_the_allocators_peak():
    """The tracker's peak of a training step equals what the CPU allocator reports to
    torch.profiler (no checkpoint: no buffers hidden inside kernels)."""
    from torch.profiler import ProfilerActivity, profile
    model, batch = tiny_model('quickstart/ebt_denoise_skimage.py')
    batch = model_size.repeat_batch(batch, 2)
    memory = model_size.LiveMemory()
    torch.manual_seed(0)
    with memory:
        model_size.training_step(model, batch)
    memory.stop()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model_size.training_step(model, batch)
    try:
        events = [event for event in prof.profiler.kineto_results.events()
                  if event.name() == '[memory]']
    except AttributeError:
        pytest.skip("this PyTorch's profiler keeps its memory events elsewhere")
    live = peak = 0
    for event in sorted(events, key=lambda event: event.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    assert max(memory.curve()) == pytest.approx(peak, rel=0.01)


def test_two_and_three_samples_give_the_step_at_any_batch():
    model, batch = tiny_model('ebt_text_dyck.py')

    def run(count):
        return model_size.measure_step(model, model_size.repeat_batch(batch, count))

    extrapolated = model_size.at_batch(run, 5)  # from 2 and 3 samples
    assert extrapolated['memory_scaling'] == 'per event'
    direct = run(5)
    assert extrapolated['flops'] == direct['flops']
    assert extrapolated['peak'] == max(direct['curve'])


@pytest.mark.parametrize('config', ['quickstart/ebt_denoise_skimage.py', 'ebt_text_dyck.py',
                                    'transformerpp_text_dyck.py'])
def test_checkpointing_lowers_the_peak_and_recomputes_the_forward(config):
    model, batch = tiny_model(config, arch=dict(depth=4, num_heads=2, embed_dims=32))
    batch = model_size.repeat_batch(batch, 2)
    assert model_size.supports_checkpointing(model)
    results = {}
    for enabled in (False, True):
        with model_size.checkpointing(model, enabled):
            results[enabled] = model_size.measure_step(model, batch)
    assert not model.backbone.with_cp  # restored
    plain, checkpointed = results[False], results[True]
    # less for an EBT: the energy gradient's create_graph keeps what its backward needs
    assert max(checkpointed['curve']) < 0.95 * max(plain['curve'])
    assert checkpointed['flops']['forward'] == plain['flops']['forward']
    recomputed = (checkpointed['flops']['energy_grad'] + checkpointed['flops']['backward']
                  - plain['flops']['energy_grad'] - plain['flops']['backward'])
    assert recomputed > 0.5 * plain['flops']['forward']


def test_a_backbone_without_checkpointing_gets_a_dash():
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    assert not model_size.supports_checkpointing(model)
    row = dict(config='x.py', batch=4, rows=6, params=1e6, non_embedding=1e6,
               step_flops=3e12, forward_flops=1e12, forward_phase_flops=1e12,
               energy_grad_phase_flops=0, backward_phase_flops=2e12, weight_bytes=4e6,
               optimizer_bytes=12e6, activation_bytes=2**30, activation_bytes_cp=None)
    assert model_size.table([row]).splitlines()[-1] == (
        '| x.py | 4+2 | 1.0M | 1.0M | 3.000 | 1.0 + - + 2.0 | 3.0x | 0.00 | 0.01 | 1.00 | - |')


def test_the_s2_step_is_measured_at_its_largest_with_the_replayed_rows():
    model, batch = tiny_model('ebt_ssv2_nextframe_s2.py')
    assert model_size.rows_per_step(model, 16) == 24  # 8 replayed once the buffer is full
    buffer = model.replay_buffer
    with model_size.largest_step(model):
        assert model.thinker.final_landscape_repeats == (3, 3)
        assert model.replay_buffer is None
        flops = [model_size.measure_step(model, model_size.repeat_batch(batch, 2))['flops']
                 for _ in range(2)]
    assert flops[0] == flops[1]  # no random extent left
    assert model.thinker.final_landscape_repeats == (2, 3) and model.replay_buffer is buffer


def test_ebt_step_costs_more_than_a_plain_training_step(tmp_path):
    """A DiT step is forward + backward (3 forwards); the EBT's adds the energy gradient
    with its graph and the second-order backward."""
    out = tmp_path / 'sizes.json'
    result = run_tool('tools/analysis/model_size.py', 'configs/quickstart/ebt_denoise_skimage.py',
                      'configs/quickstart/dit_denoise_skimage.py', '--batch-size', '5',
                      '--json', str(out))
    assert '| ebt_denoise_skimage.py | 5 |' in result.stdout
    assert ' + - + ' in result.stdout.splitlines()[-1]  # the DiT has no energy gradient
    ebt, dit = json.loads(out.read_text())
    assert dit['step_flops'] / dit['forward_flops'] == pytest.approx(3.0, rel=0.1)
    assert ebt['step_flops'] / ebt['forward_flops'] > 5
    for row in (ebt, dit):
        assert row['weight_bytes'] == 4 * row['params']
        assert row['step_flops'] == sum(row[f'{phase}_phase_flops']
                                        for phase in model_size.PHASES)
        assert 0 < row['activation_bytes_cp'] < row['activation_bytes']
        assert row['memory_scaling'] == 'per event'


def test_a_bad_batch_size_is_one_line():
    result = run_tool('tools/analysis/model_size.py', 'configs/quickstart/dit_denoise_skimage.py',
                      '--batch-size', '0', check=False)
    assert result.returncode == 2 and result.stderr.startswith('error: --batch-size')
