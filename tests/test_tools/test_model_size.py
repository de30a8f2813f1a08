"""tools/analysis/model_size.py: parameter counts, FLOPs through the thinking loop, memory."""
import json
import os.path as osp
import sys

import pytest
import torch
from torch import nn

from tests.conftest import ROOT, run_tool

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import model_size  # noqa: E402


def test_flops_follow_torchs_formulas_also_inside_autograd_grad():
    layer = nn.Linear(8, 4, bias=False)
    x = torch.randn(2, 8)
    assert model_size.flops_of(lambda: layer(x)) == 2 * 2 * 8 * 4

    def energy_gradient():  # what an EBT does: a gradient w.r.t. a leaf input
        candidate = x.clone().requires_grad_()
        torch.autograd.grad(layer(candidate).sum(), candidate, create_graph=True)

    # forward matmul, then the backward matmul for the input gradient
    assert model_size.flops_of(energy_gradient) == 2 * (2 * 2 * 8 * 4)


def test_parameter_counts_leave_out_input_embeddings():
    model = nn.Module()
    model.token_embed = nn.Embedding(10, 4)
    model.proj = nn.Linear(4, 4)
    model.proj.requires_grad_(False)
    assert model_size.count_parameters(model) == dict(params=60, trainable=40,
                                                      non_embedding=20)


def test_ebt_step_costs_more_than_a_plain_training_step(tmp_path):
    """A DiT step is forward + backward (3 forwards); the EBT's adds the energy gradient
    with its graph and the second-order backward."""
    out = tmp_path / 'sizes.json'
    result = run_tool('tools/analysis/model_size.py', 'configs/quickstart/ebt_denoise_skimage.py',
                      'configs/quickstart/dit_denoise_skimage.py', '--batch-size', '2',
                      '--json', str(out))
    assert '| ebt_denoise_skimage.py | 2 |' in result.stdout
    ebt, dit = json.loads(out.read_text())
    assert dit['step_flops'] / dit['forward_flops'] == pytest.approx(3.0, rel=0.1)
    assert ebt['step_flops'] / ebt['forward_flops'] > 5
    for row in (ebt, dit):
        assert row['weight_bytes'] == 4 * row['params']
        assert row['activation_bytes'] > 0


def test_a_bad_batch_size_is_one_line():
    result = run_tool('tools/analysis/model_size.py', 'configs/quickstart/dit_denoise_skimage.py',
                      '--batch-size', '0', check=False)
    assert result.returncode == 2 and result.stderr.startswith('error: --batch-size')
