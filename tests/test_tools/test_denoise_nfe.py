"""tools/benchmark/denoise_nfe.py on tiny EBT / DiT denoisers: the inputs and the pass count."""
import os.path as osp
import sys

import torch

from ebtvision.apis import init_model
from ebtvision.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))
import denoise_nfe  # noqa: E402


def stretched(config: str, **model) -> str:
    """``config`` with evaluation noise on the stretched schedule and ``model`` settings."""
    path = config[:-3] + '_stretched.py'
    with open(path, 'w') as file:
        file.write(f'_base_ = [{osp.basename(config)!r}]\n'
                   f'model = dict(stretch_eval_noise=True, **{model!r})\n')
    return path


def test_images_are_noised_as_evaluation_noises_them(tiny_config):
    register_all_modules()
    model = init_model(stretched(tiny_config('dit')), None).eval()
    images, samples = denoise_nfe.load_images(model.cfg)
    noisy = denoise_nfe.noisy_images(model, images, samples, 1, 0.2)
    with torch.no_grad():
        evaluated = model.predict(images, samples)
    torch.testing.assert_close(noisy, torch.stack([s.noisy_imgs['0.2'] for s in evaluated]),
                               rtol=0, atol=0)
    model.stretch_eval_noise = False  # the option is honoured: off, other inputs
    assert not torch.allclose(noisy, denoise_nfe.noisy_images(model, images, samples, 1, 0.2))


def test_dit_passes_count_every_reverse_run(tiny_config, tmp_path, monkeypatch, capsys):
    register_all_modules()
    configs = dict(ebt=stretched(tiny_config('ebt')),
                   dit=stretched(tiny_config('dit'),
                                 test_cfg=dict(respace=True, recurse=1)))
    checkpoints = {}
    for kind, config in configs.items():
        torch.manual_seed(0)
        checkpoints[kind] = str(tmp_path / f'{kind}.pth')
        torch.save({'state_dict': init_model(config, None).state_dict()}, checkpoints[kind])
    monkeypatch.setattr(sys, 'argv', [
        'denoise_nfe.py', '--ebt-config', configs['ebt'], '--ebt-checkpoint',
        checkpoints['ebt'], '--dit-config', configs['dit'], '--dit-checkpoint',
        checkpoints['dit'], '--ebt-steps', '1', '--dit-steps', '2', '3', '--noise-levels', '0.1',
        '0.2', '--repeats', '1', '--threads', str(torch.get_num_threads())])
    denoise_nfe.main()
    rows = {tuple(line.split()[:2]): line.split()[2]
            for line in capsys.readouterr().out.splitlines() if line.startswith('DiT')}
    # 0.1 is the training level (one run), 0.2 above it (recurse 1: two runs)
    assert rows == {('DiT', '2'): '2/4', ('DiT', '3'): '3/6'}


def test_passes_label():
    assert denoise_nfe.passes_label([100, 100]) == '100'
    assert denoise_nfe.passes_label([100, 300]) == '100/300'
