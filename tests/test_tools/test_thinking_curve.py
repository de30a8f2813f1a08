"""tools/analysis/thinking_curve.py on tiny EBT / DiT denoisers and a tiny next-frame EBT."""
import json
import os.path as osp
import sys

import cv2
import pytest
import torch

from ebtvision.apis import init_model
from ebtvision.evaluation import PSNRMetric
from ebtvision.structures import DenoiseDataSample
from ebtvision.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import thinking_curve  # noqa: E402

pytestmark = pytest.mark.slow


def checkpoint_of(config: str, path: str) -> str:
    """Save a random model of ``config`` whose energy is not flat."""
    register_all_modules()
    torch.manual_seed(0)
    model = init_model(config, None)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.2 * torch.randn_like(param))
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def rows_of(out_dir):
    with open(osp.join(out_dir, 'thinking_curve.json')) as file:
        return json.load(file)['rows']


def test_denoiser_curves_with_dit_and_adaptive_rows(tiny_config, tmp_path, capsys):
    ebt_config, dit_config = tiny_config('ebt'), tiny_config('dit')
    ebt_ckpt = checkpoint_of(ebt_config, str(tmp_path / 'ebt.pth'))
    dit_ckpt = checkpoint_of(dit_config, str(tmp_path / 'dit.pth'))
    # The reference's protocol: one more reverse run above the training level, and both
    # models noised on the stretched schedule.
    reference_dit = tmp_path / 'tiny_dit_reference.py'
    reference_dit.write_text(f"_base_ = [{osp.basename(dit_config)!r}]\nmodel = dict("
                             "test_cfg=dict(respace=True, recurse=1), stretch_eval_noise=True)\n")
    out = str(tmp_path / 'curve')
    code = thinking_curve.main([
        ebt_config, ebt_ckpt, '--steps', '1', '2', '--candidates', '1', '2', '--noise-levels',
        '0.1', '0.2', '--tolerance', '0.05', '--max-samples', '3', '--dit-config',
        str(reference_dit), '--dit-checkpoint', dit_ckpt, '--dit-steps', '1', '3', '--out-dir',
        out, '--cfg-options', 'model.stretch_eval_noise=True'])
    assert code == 0
    rows = rows_of(out)
    ebt = [r for r in rows if r['model'] == 'EBT' and not r['tolerance']]
    assert {(r['steps'], r['candidates'], r['noise_level']) for r in ebt} == {
        (s, m, level) for s in (1, 2) for m in (1, 2) for level in (0.1, 0.2)}
    for r in ebt:  # forward: M (S + 1), backward: M S
        assert r['forward_passes'] == r['candidates'] * (r['steps'] + 1)
        assert r['passes'] == r['candidates'] * (2 * r['steps'] + 1)
    # Self-verification never ends at a higher energy than the single candidate.
    for r in ebt:
        if r['candidates'] == 2:
            single = next(o for o in ebt if o['candidates'] == 1 and o['steps'] == r['steps']
                          and o['noise_level'] == r['noise_level'])
            assert r['mean_final_energy'] <= single['mean_final_energy'] + 1e-6
    adaptive = [r for r in rows if r['tolerance']]
    assert len(adaptive) == 2 and all(1 <= r['steps_used'] <= 2 for r in adaptive)
    dit = [r for r in rows if r['model'] == 'DiT']
    assert {(r['steps'], r['noise_level']) for r in dit} == {(1, 0.1), (3, 0.1), (1, 0.2),
                                                             (3, 0.2)}
    # every run of the reverse process counts: two at 0.2 (recurse 1)
    assert {(r['steps'], r['noise_level']): r['passes'] for r in dit} == {
        (1, 0.1): 1, (3, 0.1): 3, (1, 0.2): 2, (3, 0.2): 6}
    assert all(r['forward_passes'] == r['steps_used'] == r['passes'] for r in dit)
    for r in dit:  # both models saw the same (stretched) noisy images
        assert r['noisy_psnr'] == pytest.approx(next(
            o['noisy_psnr'] for o in ebt if o['noise_level'] == r['noise_level']), abs=1e-9)
    image = cv2.imread(osp.join(out, 'thinking_curve.png'))
    assert image is not None and image.shape[1] > image.shape[0]  # one panel per level
    printed = capsys.readouterr().out
    assert '0.1 (in dist.)' in printed and '0.2 (OOD)' in printed

    # The 1-step, 1-candidate PSNR is what the model's own predictions score.
    model = init_model(ebt_config, ebt_ckpt)
    model.eval_noise_levels = [0.1, 0.2]
    model.stretch_eval_noise = True
    model.test_cfg.update(num_steps=1, energy_maps=False)
    batches = thinking_curve.load_batches(model.cfg, 'val', 3, 8, model)
    metric = PSNRMetric()
    for inputs, samples in batches:
        with torch.no_grad():
            metric.process(None, model.predict(inputs, samples))
    expected = metric.compute_metrics(metric.results)['psnr@0.1']
    first = next(r for r in ebt if r['steps'] == 1 and r['candidates'] == 1
                 and r['noise_level'] == 0.1)
    assert first['psnr'] == pytest.approx(expected, abs=1e-4)
    # The noisy inputs at 0.2 are noise_for_eval's on the stretched schedule.
    noisy_psnr = {}
    for stretch in (True, False):
        model.stretch_eval_noise = stretch
        metric = PSNRMetric()
        for inputs, samples in batches:
            noisy = model.noise_for_eval(inputs, 0.2, model.eval_noise(inputs, samples, 1))
            metric.process(None, [DenoiseDataSample(gt_img=image, noisy_imgs={'0.2': x})
                                  for image, x in zip(inputs, noisy)])
        noisy_psnr[stretch] = metric.compute_metrics(metric.results)['noisy_psnr@0.2']
    at_02 = next(r for r in ebt if r['noise_level'] == 0.2)
    assert at_02['noisy_psnr'] == pytest.approx(noisy_psnr[True], abs=1e-9)
    assert at_02['noisy_psnr'] != pytest.approx(noisy_psnr[False], abs=1e-4)


def test_next_frame_curves(video_config, tmp_path):  # noqa: F811
    config = video_config('ebt')
    ckpt = checkpoint_of(config, str(tmp_path / 'video.pth'))
    out = str(tmp_path / 'curve')
    assert thinking_curve.main([config, ckpt, '--steps', '1', '3', '--candidates', '1', '2',
                                '--out-dir', out]) == 0
    rows = rows_of(out)
    assert len(rows) == 4 and all(r['smooth_l1'] > 0 and r['noise_level'] is None
                                  for r in rows)
    assert osp.isfile(osp.join(out, 'thinking_curve.png'))


def test_models_that_do_not_think_are_refused(video_config, tiny_config, tmp_path,  # noqa: F811
                                              capsys):
    config = video_config('tpp')
    ckpt = checkpoint_of(config, str(tmp_path / 'tpp.pth'))
    assert thinking_curve.main([config, ckpt, '--out-dir', str(tmp_path / 'x')]) == 1
    assert 'need an EBT' in capsys.readouterr().err
    assert thinking_curve.main([tiny_config('ebt'), str(tmp_path / 'missing.pth')]) == 1
    assert 'missing.pth does not exist' in capsys.readouterr().err


TEXT_CONFIG = """
default_scope = 'ebtvision'
model = dict(type='EBTLanguageModel',
             backbone=dict(type='CausalEBT', arch=dict(depth=1, num_heads=2, embed_dims=16),
                           max_steps=2),
             thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=50.0))
_dyck = dict(type='DyckDataset', num_samples=6, num_types=2, seq_len=40)
val_dataloader = dict(dataset=dict(length=(4, 8), max_depth=3, seed=1, **_dyck))
test_dataloader = dict(dataset=dict(length=(10, 14), max_depth=6, seed=2, **_dyck))
"""


def test_language_model_curves_on_both_splits(tmp_path, capsys):
    config = tmp_path / 'text.py'
    config.write_text(TEXT_CONFIG)
    ckpt = checkpoint_of(str(config), str(tmp_path / 'text.pth'))
    out = str(tmp_path / 'curve')
    assert thinking_curve.main([str(config), ckpt, '--steps', '1', '2', '--candidates', '1',
                                '2', '--tolerance', '0.5', '--out-dir', out]) == 0
    rows = rows_of(out)
    assert {(r['split'], r['steps'], r['candidates']) for r in rows if not r['tolerance']} == {
        (split, s, m) for split in ('val', 'test') for s in (1, 2) for m in (1, 2)}
    assert len([r for r in rows if r['tolerance']]) == 2
    for r in rows:
        assert 0 <= r['completion_accuracy'] <= 1 and r['perplexity'] > 1
    printed = capsys.readouterr().out
    assert 'completion acc.' in printed and '| EBT | test |' in printed
    # The 1-step, 1-candidate test row is what tools/test.py's metric gives.
    from mmengine.dataset import pseudo_collate

    from ebtvision.evaluation import LanguageModelMetric
    from ebtvision.registry import DATASETS
    model = init_model(str(config), ckpt)
    model.test_cfg.update(num_steps=1)
    dataset = DATASETS.build(model.cfg.test_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]))
    metric = LanguageModelMetric()
    with torch.no_grad():
        metric.process(None, model.predict(data['inputs'], data['data_samples']))
    expected = metric.compute_metrics(metric.results)
    first = next(r for r in rows if r['split'] == 'test' and r['steps'] == 1
                 and r['candidates'] == 1 and not r['tolerance'])
    assert first['perplexity'] == pytest.approx(expected['perplexity'], rel=1e-5)
    assert first['completion_accuracy'] == expected['completion_accuracy']
