"""demo/generate_text.py: tiny EBT / Transformer++ language models on a text prompt."""
import json
import os.path as osp
import sys

import pytest
import torch
from conftest import write_denoiser, write_text_model

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'demo'))
import generate_text  # noqa: E402

def test_ebt_continuation_with_energies(tmp_path, capsys):
    config, checkpoint, model = write_text_model(tmp_path, 'ebt')
    out = str(tmp_path / 'result.json')
    generate_text.main([config, checkpoint, '--prompt', 'The for', '--prompt',
                        'é', '--num-tokens', '5', '--thinking-steps', '3', '--tolerance',
                        '0.01', '--num-candidates', '2', '--show-energies', '--out-json', out])
    printed = capsys.readouterr().out
    assert 'least sure (highest energy)' in printed and 'exceed the 16' not in printed
    results = json.load(open(out))['results']
    assert [r['prompt'] for r in results] == ['The for', 'é']
    first = results[0]
    assert len(first['tokens']) == len(first['energies']) == len(first['steps_used']) == 5
    assert all(1 <= steps <= 3 for steps in first['steps_used'])
    assert first['continuation'] == model.tokenizer.decode(first['tokens'])
    # The same tokens and energies as the model's own generation with those options.
    expected = model.eval().generate(torch.tensor([list('The for'.encode())]), 5,
                                     return_details=True, num_steps=3, num_candidates=2,
                                     tolerance=0.01)
    assert first['tokens'] == expected.tokens[0].tolist()
    assert first['energies'] == pytest.approx(expected.energies[0].tolist(), abs=1e-5)
    for index, energy in enumerate(first['energies'][:2]):
        assert f'{energy:9.3f}' in printed


def test_transformer_pp_and_bad_input(tmp_path, capsys):
    config, checkpoint, _ = write_text_model(tmp_path, 'tpp')
    generate_text.main([config, checkpoint, '--prompt', 'x' * 14, '--num-tokens', '4'])
    printed = capsys.readouterr().out
    assert 'one forward pass per token' in printed and 'exceed the 16' in printed
    assert 'least sure' not in printed

    def error_of(*argv):
        with pytest.raises(SystemExit) as exit_info:
            generate_text.main(list(argv))
        return str(exit_info.value)

    assert 'apply to EBTs' in error_of(config, checkpoint, '--prompt', 'a',
                                       '--num-candidates', '2')
    assert 'give a prompt' in error_of(config, checkpoint)
    assert 'empty' in error_of(config, checkpoint, '--prompt', '')
    assert 'does not exist' in error_of(config, checkpoint, '--prompt-file',
                                        str(tmp_path / 'none.txt'))
    (tmp_path / 'latin1.txt').write_bytes(b'caf\xe9')
    assert 'not UTF-8' in error_of(config, checkpoint, '--prompt-file',
                                   str(tmp_path / 'latin1.txt'))
    assert error_of(config, str(tmp_path / 'missing.pth'), '--prompt', 'a').startswith('error:')
    denoiser_config, denoiser_checkpoint = write_denoiser(tmp_path, 'ebt')
    assert 'not a language model' in error_of(denoiser_config, denoiser_checkpoint, '--prompt',
                                              'a')
