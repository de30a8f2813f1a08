"""tools/benchmark/video_train_speed.py: a smoke run with a tiny VAE on a real bundled clip."""
import json
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))
import video_train_speed  # noqa: E402

pytestmark = pytest.mark.slow


def test_smoke_run_reports_both_paths_and_both_models(tmp_path, capsys):
    # One thread: in-process, OMP_WAIT_POLICY cannot be set any more, and two spinning
    # threads on a busy 2-core machine make this run ~10x slower.
    out = str(tmp_path / 'speed.json')
    video_train_speed.main(['--frame-size', '32', '--context', '2', '--batch-size', '1',
                            '--iters', '1', '--warmup', '0', '--step-iters', '1',
                            '--threads', '1', '--tiny-vae', '--out-json', out])
    printed = capsys.readouterr().out
    assert 'RANDOM weights' in printed and '| latent cache (LatentClipDataset) |' in printed
    result = json.load(open(out))
    for path in ('on_the_fly', 'cached'):
        assert result[path]['s_per_iter'] > 0
    assert result['speedup'] == pytest.approx(
        result['on_the_fly']['s_per_iter'] / result['cached']['s_per_iter'])
    # bigbuckbunny: 5.3 s sampled every 0.25 s
    assert result['extraction']['frames'] == 22
    # The cache holds exactly what the encoder gives on the fly for the same window.
    assert result['latents_check'].startswith('same window')
    assert float(result['latents_check'].split('= ')[1].split()[0]) < 1e-4
    for key in ('train_step_s', 'inference_s_per_clip'):
        assert set(result['ebt_vs_tpp'][key]) == {'ebt', 'tpp'}
