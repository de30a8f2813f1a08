"""tools/model_converters/from_reference.py: a reference checkpoint in, ours out."""
import argparse
import os

import torch

from tests.conftest import run_tool, weights
from tests.test_reference.test_image import as_reference_ebt, tiny_ebt

TOOL = 'tools/model_converters/from_reference.py'

TINY_EBT_CONFIG = """
default_scope = 'ebtvision'
model = dict(
    type='EBTDenoiser',
    backbone=dict(type='BidirectionalEBT', arch=dict(depth=2, num_heads=2, embed_dims=32),
                  img_size=16, patch_size=4, mlp_ratio=1.0),
    thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=3000.0))
"""


class RunsCode:

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def reference_checkpoint(path, marker):
    """What the reference's Lightning trainer writes: ``model.``-prefixed weights, a
    hyper-parameter namespace, and here an object that would run a command."""
    source = tiny_ebt()
    with torch.no_grad():
        for param in source.parameters():
            param.normal_()
    state = {f'model.{k}': v for k, v in as_reference_ebt(source.state_dict()).items()}
    torch.save(dict(state_dict=state, hyper_parameters=argparse.Namespace(embedding_dim=32),
                    callbacks=[RunsCode(marker)]), path)
    return source.state_dict()


def test_converts_checks_against_a_config_and_runs_no_code(tmp_path):
    marker = tmp_path / 'MARKER'
    expected = reference_checkpoint(tmp_path / 'ref.ckpt', marker)
    config = tmp_path / 'tiny.py'
    config.write_text(TINY_EBT_CONFIG)
    out = tmp_path / 'ours.pth'
    result = run_tool(TOOL, str(tmp_path / 'ref.ckpt'), str(out), '--family', 'image_ebt',
                      '--config', str(config))
    assert 'every weight fits' in result.stdout
    converted = weights(out)
    assert sorted(converted) == sorted(expected)
    assert all(torch.equal(converted[k], v) for k, v in expected.items())
    assert not marker.exists()
    # What the demos and tools/test.py load it with.
    from ebtvision.apis import init_model
    model = init_model(str(config), str(out))
    assert torch.equal(model.thinker.alpha, expected['thinker.alpha'])

    # The output is never overwritten without --force.
    before = out.read_bytes()
    again = run_tool(TOOL, str(tmp_path / 'ref.ckpt'), str(out), '--family', 'image_ebt',
                     check=False)
    assert again.returncode == 2 and 'exists; pass --force' in again.stderr
    assert out.read_bytes() == before


def test_a_config_that_does_not_fit_is_one_line(tmp_path):
    reference_checkpoint(tmp_path / 'ref.ckpt', tmp_path / 'MARKER')
    config = tmp_path / 'wider.py'
    config.write_text(TINY_EBT_CONFIG.replace('embed_dims=32', 'embed_dims=64'))
    result = run_tool(TOOL, str(tmp_path / 'ref.ckpt'), str(tmp_path / 'out.pth'), '--family',
                      'image_ebt', '--config', str(config), check=False)
    assert result.returncode == 2
    assert result.stderr.startswith('error: --config') and 'of another shape' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / 'out.pth').exists()
