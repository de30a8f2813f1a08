"""tools/benchmark/train_speed.py --end-to-end: tools/train.py beside the bare step."""
import pytest

from tests.conftest import run_tool


def test_end_to_end_times_the_training_tool_beside_the_bare_step():
    result = run_tool('tools/benchmark/train_speed.py', '--end-to-end', '--arch', '4xs',
                      '--batch-size', '2', '--iters', '5', '--repeats', '1', '--warmup', '0',
                      '--threads', '1')
    lines = result.stdout.splitlines()
    rows = {line[:28].strip(): line[28:].split() for line in lines if line[:1] in 'ot'}
    train_median = float(rows['tools/train.py iteration'][0])
    bare_median = float(rows['ours, bare step + AdamW'][0])
    assert 0 < bare_median and 0 < train_median
    assert lines[-1].startswith('tools/train.py vs our bare step: ')
    overhead = float(lines[-1].split(':')[1].split()[0])  # e.g. '+12.3 %'
    # the printed medians are rounded to 3 decimals: compare the ratio loosely
    assert overhead / 100 + 1 == pytest.approx(train_median / bare_median, rel=0.1)


def test_end_to_end_needs_the_quick_start_crop_size():
    result = run_tool('tools/benchmark/train_speed.py', '--end-to-end', '--img-size', '32',
                      check=False)
    assert result.returncode != 0 and 'use --img-size 64' in result.stderr


def test_defaults_compares_each_alternative_with_the_training_tool_defaults():
    result = run_tool('tools/benchmark/train_speed.py', '--defaults', '--archs', '4xs',
                      '--batch-size', '2', '--iters', '4')
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith('variant'))
    rows = lines[header + 1:]
    assert [row[:52].strip() for row in rows] == [
        'defaults (1 data worker, all cores, OpenMP default)',
        'data in the main process (num_workers=0)', '1 thread (OMP_NUM_THREADS=1)',
        'OMP_WAIT_POLICY=PASSIVE']
    seconds = [float(row[52:].split()[0]) for row in rows]
    assert all(value > 0 for value in seconds)
    assert rows[0].split()[-1] == '(+0%)'  # the defaults are the reference row
