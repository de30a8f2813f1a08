"""tools/benchmark/gpu_check.py on CPU (--device cpu --tiny)."""
import contextlib
import io
import json
import math
import os.path as osp
import sys

import pytest
import torch

from tests.conftest import ROOT, run_tool

sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))
import gpu_check  # noqa: E402

# (config, inputs, kernels) of the default checks: fused / plain pairs where the model
# has both, the causal EBT's single math kernel.
EXPECTED = [
    ('ebt_coco_denoise.py', 'images', ('fused', 'plain')),
    ('dit_coco_denoise.py', 'images', ('fused', 'plain')),
    ('ebt_ssv2_nextframe.py', 'pixels', ('math', )),
    ('ebt_ssv2_nextframe_cached.py', 'latents', ('math', )),
    ('ebt_ssv2_nextframe_s2.py', 'latents', ('math', )),
    ('transformerpp_ssv2_nextframe.py', 'pixels', ('fused', 'plain')),
    ('transformerpp_ssv2_nextframe.py', 'latents', ('fused', 'plain')),
]
INPUT_LABELS = dict(images='images', pixels='frames -> VAE', latents='latents (cache)')


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """One tiny run of every default check, both precisions (its stdout and JSON)."""
    out = tmp_path_factory.mktemp('gpu_check') / 'rows.json'
    stdout = io.StringIO()  # capsys is per test; the run is shared by the module
    with contextlib.redirect_stdout(stdout):
        code = gpu_check.main(['--device', 'cpu', '--tiny', '--warmup', '1', '--iters', '2',
                               '--json', str(out)])
    return code, stdout.getvalue(), json.loads(out.read_text())


def test_tiny_run_passes_with_every_row_in_the_table(tiny_run):
    code, stdout, report = tiny_run
    lines = stdout.strip().splitlines()
    assert code == 0 and report['passed']
    assert lines[-1].startswith('verdict: PASS: 22 rows')
    rows = [line for line in lines if line.startswith('| ') and '.py |' in line]
    expected = [(config, inputs, precision, kernel) for config, inputs, kernels in EXPECTED
                for precision in ('fp32', 'bf16') for kernel in kernels]
    assert len(rows) == len(expected) == len(report['rows'])
    for line, row, (config, inputs, precision, kernel) in zip(rows, report['rows'], expected):
        cells = [cell.strip() for cell in line.strip('|').split('|')]
        assert cells[:5] == [config, INPUT_LABELS[inputs], '2', precision, kernel]
        assert row['it_per_s'] > 0 and float(cells[5]) == pytest.approx(row['it_per_s'],
                                                                         rel=0.01)
        assert cells[6] == '-'  # no CUDA peak memory on CPU
        assert cells[7] == 'yes (3)'  # 1 warm-up + 2 timed losses, all finite
        if kernel == 'math':
            assert cells[8] == 'n/a'
        else:
            assert cells[8].startswith('yes (loss ')


def test_tiny_run_trains_and_compares_real_computations(tiny_run):
    _, _, report = tiny_run
    for row in report['rows']:
        assert row['finite'] and row['ok'] and row['error'] is None
        assert all(math.isfinite(loss) for loss in row['losses'])
        # AdamW steps on a fixed batch: the loss moves between iterations
        assert len(set(row['losses'])) > 1
        agreement = row['agreement']
        if row['kernel'] == 'math':
            assert agreement is None
            continue
        assert agreement['equal']
        if row['precision'] == 'fp32':
            # only the order of operations differs: far below the tolerance
            assert agreement['grad_rel'] < 1e-5 and agreement['loss_rel'] < 1e-5
        else:  # bf16 rounds: the tolerance follows bf16's own distance to fp32
            assert agreement['tolerance'] == pytest.approx(
                max(gpu_check.BF16_MIN_TOLERANCE, 2 * agreement['bf16_noise']))
            assert 0 < agreement['bf16_noise'] < 0.2
        if row['config'].endswith('denoise.py'):
            # the fused adaLN block and the modules are different code: not bit-equal
            assert agreement['grad_rel'] > 0


def test_default_inputs_per_config():
    checks = gpu_check.plan([osp.join(ROOT, spec) for spec in gpu_check.DEFAULT_CHECKS])
    assert [(osp.basename(check.config), check.inputs) for check in checks] == [
        (config, inputs) for config, inputs, _ in EXPECTED]
    # without :INPUTS an on-the-fly next-frame config runs both ways
    both = gpu_check.plan([osp.join(ROOT, 'configs/ebt_ssv2_nextframe.py')])
    assert [check.inputs for check in both] == ['pixels', 'latents']


def test_prepare_gives_the_sd_vae_random_weights_and_tiny_sizes():
    cfg = gpu_check.plan([osp.join(ROOT, 'configs/ebt_ssv2_nextframe_s2.py:latents')])[0].cfg
    real = gpu_check.prepare(cfg, 'next_frame', tiny=False)
    assert real.model.encoder.pretrained is None and real.model.encoder.vae_cfg == 'sd'
    assert real.model.encoder.use_scaling  # the S2 config's own encoder options stay
    assert real.model.backbone.arch == 'xxs' and real.train_dataloader.dataset.clip_len == 17
    tiny = gpu_check.prepare(cfg, 'next_frame', tiny=True)
    assert tiny.model.backbone.arch == gpu_check.TINY_ARCH and tiny.model.frame_size == 32
    assert len(tiny.model.encoder.vae_cfg['block_out_channels']) == 4  # SD-VAE's levels
    assert cfg.model.encoder.pretrained == 'stabilityai/sd-vae-ft-mse'  # input untouched


@pytest.mark.parametrize('argv, message', [
    (['--configs', 'configs/no_such_config.py'], 'error: config configs/no_such_config.py '
     'does not exist'),
    (['--configs', 'configs/ebt_coco_denoise.py:latents'], 'takes images inputs, not latents'),
    (['--configs', 'configs/ebt_text_dyck.py'], 'is not a denoiser or a next-frame model'),
    (['--iters', '0'], 'error: --iters must be >= 1'),
    (['--device', 'cpu'], 'add --tiny'),
])
def test_bad_options_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        gpu_check.main(argv + (['--tiny'] if argv[0] == '--configs' else []) +
                       (['--device', 'cpu'] if argv[0] != '--device' else []))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and message in err


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error of a machine without CUDA')
def test_without_cuda_the_script_says_how_to_run_on_cpu():
    result = run_tool('tools/benchmark/gpu_check.py', check=False)
    assert result.returncode == 2 and not result.stdout
    assert result.stderr.count('\n') == 1
    assert result.stderr.startswith('error: CUDA is not available') and \
        '--device cpu --tiny' in result.stderr


def _broken_kernels(how: str):
    """gpu_check.kernels whose ``fused`` variant of the denoisers computes something
    else: the patch embedding doubled (a wrong kernel), or NaN (a diverging one),
    restored afterwards. Other models keep their real kernels."""
    real_kernels = gpu_check.kernels

    def kernels(model):
        variants = real_kernels(model)
        if not hasattr(model.backbone, 'patch_embed'):
            return variants
        fused = variants['fused']

        @contextlib.contextmanager
        def broken():
            weight = model.backbone.patch_embed.proj.weight
            saved = weight.detach().clone()
            with torch.no_grad():
                weight.mul_(2.0) if how == 'wrong' else weight.fill_(float('nan'))
            try:
                with fused():
                    yield
            finally:
                with torch.no_grad():
                    weight.copy_(saved)

        return dict(variants, fused=broken)

    return kernels


def test_a_wrong_kernel_fails_the_verdict(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, 'kernels', _broken_kernels('wrong'))
    code = gpu_check.main(['--device', 'cpu', '--tiny', '--configs', 'configs/dit_coco_denoise.py',
                           '--precisions', 'fp32', '--warmup', '0', '--iters', '1'])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    rows = [line for line in lines if line.startswith('| dit_coco_denoise.py')]
    assert len(rows) == 2 and all('| yes (1) | NO (loss ' in row for row in rows)
    assert lines[-1].startswith('verdict: FAIL: 2 of 2 rows: dit_coco_denoise.py images fp32 '
                                'fused: fused != plain')


def test_a_diverging_row_is_reported_and_the_others_still_run(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, 'kernels', _broken_kernels('nan'))
    code = gpu_check.main(['--device', 'cpu', '--tiny', '--configs', 'configs/dit_coco_denoise.py',
                           'configs/transformerpp_ssv2_nextframe.py:latents', '--precisions',
                           'fp32', '--warmup', '0', '--iters', '1'])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert code == 1 and 'NonFiniteError' in captured.err  # the traceback, on stderr
    dit = [line for line in lines if line.startswith('| dit_coco_denoise.py')]
    assert '| error | NO (loss nan' in dit[0]  # fused: the finite-checking wrapper stopped it
    assert '| yes (1) | NO (loss nan' in dit[1]  # plain trained; the pair disagrees
    # the next config's rows ran as usual
    tpp = [line for line in lines if line.startswith('| transformerpp_ssv2_nextframe.py')]
    assert len(tpp) == 2 and all('| yes (1) | yes (loss ' in line for line in tpp)
    assert lines[-1].startswith('verdict: FAIL: 2 of 4 rows: dit_coco_denoise.py images fp32 '
                                'fused: NonFiniteError: training diverged')
