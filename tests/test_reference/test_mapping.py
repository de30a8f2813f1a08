import pytest
import torch

from ebtvision.reference import MappingError, StateDictMapping, reference_state_dict

MAPPING = StateDictMapping(
    renames=((r'net\.(\d+)\.w', r'layers.\1.weight'), (r'scale', 'gain')),
    concats=(((r'net\.(\d+)\.q', r'net\.(\d+)\.k', r'net\.(\d+)\.v'), r'layers.\1.qkv', 0), ),
    ignore=(r'freqs', ))


def reference_dict():
    return {f'net.{i}.{part}': torch.full((2, 3), float(10 * i + j))
            for i in range(2) for j, part in enumerate('qkvw')} | {
                'scale': torch.tensor(3.0), 'freqs': torch.zeros(4)}


def test_renames_concatenates_in_pattern_order_and_ignores():
    ours = MAPPING.convert(reference_dict())
    assert sorted(ours) == ['gain', 'layers.0.qkv', 'layers.0.weight', 'layers.1.qkv',
                            'layers.1.weight']
    # q, k, v in the order of the patterns, whatever the dict order.
    assert ours['layers.1.qkv'][:, 0].tolist() == [10.0] * 2 + [11.0] * 2 + [12.0] * 2
    assert torch.equal(ours['layers.0.weight'], torch.full((2, 3), 3.0))


def test_gradients_convert_like_weights():
    weights = reference_dict()
    grads = {key: torch.randn_like(value) for key, value in weights.items()}
    ours = MAPPING.convert(grads)
    assert torch.equal(ours['layers.0.qkv'][2:4], grads['net.0.k'])


def test_unknown_and_incomplete_keys_are_errors():
    with pytest.raises(MappingError, match='no counterpart: mystery'):
        MAPPING.convert(reference_dict() | {'mystery': torch.zeros(1)})
    broken = reference_dict()
    del broken['net.1.v']
    with pytest.raises(MappingError, match='incomplete group'):
        MAPPING.convert(broken)


def test_reference_state_dict_strips_the_trainer_prefix():
    checkpoint = dict(state_dict={'model.a': torch.zeros(1), 'model.b': torch.ones(1)})
    assert sorted(reference_state_dict(checkpoint)) == ['a', 'b']
    with pytest.raises(MappingError, match='no state_dict'):
        reference_state_dict(dict(state_dict={}))
