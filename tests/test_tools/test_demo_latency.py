"""tools/benchmark/demo_latency.py: one timed round of requests on a tiny EBT."""
import os.path as osp
import sys

import pytest
from conftest import write_denoiser

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))
import demo_latency  # noqa: E402

pytestmark = pytest.mark.slow


def test_prints_one_row_per_step_count(tmp_path, capsys):
    config, checkpoint = write_denoiser(tmp_path, 'ebt')
    demo_latency.main(['--config', config, '--checkpoint', checkpoint, '--size', '24',
                       '--steps', '1', '3', '--repeats', '1'])
    out = capsys.readouterr().out
    assert '24x24 px image, 16 px model tiles' in out
    rows = [line for line in out.splitlines() if line.startswith('| ') and ' -> ' in line]
    assert [row.split('|')[1].strip() for row in rows] == ['1', '3']
    for row in rows:
        request, model_part = (float(cell) for cell in row.split('|')[2:4])
        assert 0 < model_part < request
