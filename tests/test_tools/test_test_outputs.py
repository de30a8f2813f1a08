"""tools/test.py's OpenMMLab outputs: --out FILE.pkl (predictions), --show-dir, --no-vis
(visualisation hooks only), --vis-backend; on one tiny trained EBT denoiser."""
import glob
import importlib.util
import json
import os.path as osp
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_CONFIG, run_tool, write_image_folder
from mmengine.config import Config

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """``(config, checkpoint, folder)``: the tiny EBT config trained for 2 iterations."""
    root = tmp_path_factory.mktemp('test_outputs')
    config = root / 'tiny_ebt.py'
    config.write_text(TINY_CONFIG.format(
        kind='ebt', train_root=write_image_folder(str(root / 'train'), 8, seed=1),
        val_root=write_image_folder(str(root / 'val'), 4, seed=2)))
    run_tool('tools/train.py', str(config), '--work-dir', str(root / 'train_run'),
             '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100')
    return str(config), str(root / 'train_run' / 'iter_2.pth'), root


def load_test_tool():
    """tools/test.py as a module, for its argument handling (no run)."""
    spec = importlib.util.spec_from_file_location('ebt_test_tool',
                                                  osp.join(ROOT, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_out_pkl_dumps_the_predictions_that_were_scored(trained):
    config, checkpoint, root = trained
    work, out = root / 'pkl_run', root / 'preds' / 'tiny.pkl'
    run_tool('tools/test.py', config, checkpoint, '--work-dir', str(work), '--out', str(out),
             '--show-dir', 'shows')
    metrics = json.loads((work / 'metrics.json').read_text())  # metrics: the work dir's JSON
    # Plain data: it unpickles with numpy alone (torch, mmengine, ebtvision unimportable).
    reader = ('import sys, pickle\n'
              'for name in ("torch", "mmengine", "ebtvision"): sys.modules[name] = None\n'
              f'samples = pickle.load(open({str(out)!r}, "rb"))\n'
              'print(len(samples), type(samples[0]["pred_imgs"]["0.1"]).__name__)')
    plain = subprocess.run([sys.executable, '-c', reader], capture_output=True, text=True)
    assert plain.stdout.split() == ['4', 'ndarray'], plain.stderr[-2000:]

    samples = pickle.loads(out.read_bytes())
    assert [s['sample_idx'] for s in samples] == [0, 1, 2, 3]
    assert [osp.basename(s['img_path']) for s in samples] == [f'img_{i:03d}.png'
                                                             for i in range(4)]
    for sample in samples:
        assert set(sample['pred_imgs']) == set(sample['noisy_imgs']) == {'0.1', '0.2'}
        assert sample['gt_img'].shape == sample['pred_imgs']['0.1'].shape == (3, 16, 16)
        assert sample['energies']['0.1'].shape == (3, )  # start + 2 thinking steps
    # The dumped images give back the reported PSNRs (PSNRMetric: 0-255 scale, clamped).
    from ebtvision.evaluation.functional import psnr, to_uint8_scale
    gt = to_uint8_scale(torch.from_numpy(np.stack([s['gt_img'] for s in samples])))
    for level in ('0.1', '0.2'):
        for field, name in (('pred_imgs', 'psnr'), ('noisy_imgs', 'noisy_psnr')):
            images = np.stack([s[field][level] for s in samples])
            value = psnr(to_uint8_scale(torch.from_numpy(images)), gt).mean().item()
            assert value == pytest.approx(metrics[f'denoise/{name}@{level}'], rel=1e-5)
        final = np.mean([s['energies'][level][-1] for s in samples])
        assert final == pytest.approx(metrics[f'thinking/energy@{level}'], rel=1e-5)
    # --show-dir relative: inside the work dir, instead of the hook's own folder.
    assert osp.isfile(work / 'shows' / 'batch_0000.png')
    assert not (work / 'denoise_vis').exists()


def test_show_dir_absolute_vis_backend_and_deprecated_json_out(trained):
    config, checkpoint, root = trained
    work, shows, out = root / 'abs_run', root / 'elsewhere' / 'grids', root / 'm.json'
    result = run_tool('tools/test.py', config, checkpoint, '--work-dir', str(work),
                      '--show-dir', str(shows), '--vis-backend', 'tensorboard',
                      '--out', str(out))
    assert osp.isfile(shows / 'batch_0000.png') and not (work / 'denoise_vis').exists()
    assert 'deprecated' in result.stderr
    metrics = json.loads(out.read_text())
    assert json.loads((work / 'metrics.json').read_text()) == metrics
    assert 'denoise/psnr@0.1' in metrics
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events, = glob.glob(str(work / '*' / 'vis_data' / 'events.out.tfevents.*'))
    accumulator = EventAccumulator(events, size_guidance={'images': 0})
    accumulator.Reload()
    assert 'test_denoise' in accumulator.Tags()['images']  # the grid, viewable in TensorBoard


def test_no_vis_drops_only_visualisation_hooks(trained, tmp_path):
    config, checkpoint, _ = trained
    with_ema = tmp_path / 'with_ema.py'
    with_ema.write_text(f'_base_ = [{config!r}]\n'
                        "custom_hooks = [dict(type='DenoiseVisualizationHook', interval=2),\n"
                        "                dict(type='ThinkingVisualizationHook'),\n"
                        "                dict(type='EMAHook', momentum=0.5)]\n")
    work = tmp_path / 'work'
    run_tool('tools/test.py', str(with_ema), checkpoint, '--work-dir', str(work), '--no-vis')
    log, = glob.glob(str(work / '*' / '*.log'))
    # The runner's listing of its hooks, up to the next log record.
    hooks = re.search(r'Hooks will be executed in the following order:\n(.*?)\n\d{4}/\d\d/\d\d ',
                      open(log).read(), re.S).group(1)
    assert 'EMAHook' in hooks
    assert 'VisualizationHook' not in hooks
    assert not (work / 'denoise_vis').exists() and not (work / 'thinking_vis').exists()
    assert json.loads((work / 'metrics.json').read_text())['denoise/psnr@0.1'] > 0


def test_visualisation_options_on_configs(capsys):
    tool = load_test_tool()
    from ebtvision.utils import register_all_modules
    register_all_modules()
    ema = dict(type='EMAHook', momentum=0.5)

    def configured(model, custom_hooks, *options, default_vis=False):
        default_hooks = dict(timer=dict(type='IterTimerHook'))
        if default_vis:  # mmdet's slot for its visualisation hook
            default_hooks['visualization'] = dict(type='DenoiseVisualizationHook')
        cfg = Config(dict(model=dict(type=model), custom_hooks=custom_hooks,
                          default_hooks=default_hooks))
        tool.configure_visualization(cfg, tool.parse_args(['c.py', 'none', *options]))
        return cfg

    cfg = configured('EBTDenoiser', [dict(type='DenoiseVisualizationHook'), ema,
                                     dict(type='ThinkingVisualizationHook')],
                     '--no-vis', default_vis=True)
    assert cfg.custom_hooks == [ema]
    assert cfg.default_hooks.visualization is None and 'timer' in cfg.default_hooks
    cfg = configured('EBTDenoiser', [dict(type='ThinkingVisualizationHook'), ema],
                     '--show-dir', 'vis')
    assert cfg.custom_hooks == [dict(type='ThinkingVisualizationHook', out_dir='vis'), ema]
    # A config without a visualisation hook gets the model's one.
    cfg = configured('EBTDenoiser', [ema], '--show-dir', '/abs/grids')
    assert cfg.custom_hooks == [ema, dict(type='DenoiseVisualizationHook',
                                          out_dir='/abs/grids')]
    cfg = configured('TransformerPPNextFrame', [], '--show-dir', 'vis')
    assert cfg.custom_hooks == [dict(type='NextFrameVisualizationHook', out_dir='vis')]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        configured('EBTLanguageModel', [ema], '--show-dir', 'vis')
    assert capsys.readouterr().err == ('error: --show-dir: c.py has no visualisation hook, '
                                       'and EBTLanguageModel has no grids to draw (denoisers '
                                       'and next-frame models have)\n')


@pytest.mark.parametrize('args, message', [
    (['--out', 'metrics.txt'], 'argument --out: metrics.txt must end with .pkl or .pickle'),
    (['--show-dir', 'v', '--no-vis'], 'argument --no-vis: not allowed with argument --show-dir'),
    (['--vis-backend', 'tensorbord'], "--vis-backend: unknown backend 'tensorbord'; known: "
     'tensorboard, wandb'),
])
def test_output_mistakes_end_in_one_line(args, message, capsys):
    tool = load_test_tool()
    with pytest.raises(SystemExit) as exit_info:
        parsed = tool.parse_args(['c.py', 'ckpt.pth', *args])
        tool.use_vis_backends(Config(dict()), parsed.vis_backend)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], lines
