"""tools/benchmark/parity.py without the reference: one clear line, no traceback.

(The comparison itself needs the reference's code, which is not in this repository; its
output is in the README.)"""
from tests.conftest import run_tool


def test_a_folder_without_the_reference_is_one_line(tmp_path):
    (tmp_path / 'model').mkdir()
    result = run_tool('tools/benchmark/parity.py', '--reference-repo', str(tmp_path),
                      check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f'error: --reference-repo {tmp_path}: ')
    assert 'model/img/ebt_denoise.py is missing' in result.stderr
    assert 'Traceback' not in result.stderr
