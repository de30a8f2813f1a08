"""Byte tokenizer, Dyck generator and dataset, packed plain text."""
import numpy as np
import pytest
import torch

from ebtvision.datasets.text import (BRACKETS, SEPARATOR, ByteTokenizer, DyckDataset,
                                     PackedTextDataset, build_tokenizer, dyck_prefix,
                                     is_balanced, max_depth_of)
from ebtvision.datasets.text.tokenizers import FileTokenizer


def test_byte_tokenizer_round_trip():
    tokenizer = ByteTokenizer()
    text = 'def f(x):\n    return "é ✓"'
    ids = tokenizer.encode(text)
    assert max(ids) < 256 and tokenizer.decode(ids) == text
    assert tokenizer.decode(ids + [tokenizer.pad_id, tokenizer.bos_id]) == text
    assert build_tokenizer(None).vocab_size == 258
    with pytest.raises(FileNotFoundError, match='does not exist'):
        FileTokenizer('/nowhere/tokenizer.json')
    with pytest.raises(ValueError, match="'byte' or 'file'"):
        build_tokenizer(dict(type='words'))


def test_file_tokenizer_reads_a_local_tokenizers_json(tmp_path):
    tokenizers = pytest.importorskip('tokenizers')
    vocab = {'<pad>': 0, '<unk>': 1, 'hello': 2, 'world': 3}
    model = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token='<unk>'))
    model.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    path = str(tmp_path / 'tokenizer.json')
    model.save(path)
    tokenizer = build_tokenizer(dict(type='file', path=path))
    assert tokenizer.vocab_size == 4 and tokenizer.pad_id == 0
    assert tokenizer.encode('hello world again') == [2, 3, 1]
    with pytest.raises(ValueError, match='pad token'):
        FileTokenizer(path, pad_token='<nothing>')
    (tmp_path / 'words.txt').write_text('hello world ' * 8)
    dataset = PackedTextDataset(data_root=str(tmp_path / 'words.txt'), seq_len=3,
                                tokenizer=dict(type='file', path=path))
    assert dataset[0]['inputs'].tolist() == [2, 3, 2, 3]


@pytest.mark.parametrize('num_types,max_depth', [(1, 1), (2, 3), (4, 6)])
def test_dyck_prefixes_are_balanced_by_their_closing(num_types, max_depth):
    rng = np.random.default_rng(0)
    allowed = set(''.join(BRACKETS[:num_types]))
    for length in ((1, 3, 7, 21) if max_depth == 1 else (1, 2, 7, 20)):
        for _ in range(20):
            prefix, closing = dyck_prefix(rng, num_types, length, max_depth)
            assert len(prefix) == length and closing and set(prefix + closing) <= allowed
            assert is_balanced(prefix + closing) and not is_balanced(prefix)
            assert max_depth_of(prefix) <= max_depth
            assert set(closing) <= set(')]}>')
    if max_depth == 1:
        with pytest.raises(ValueError, match='always balanced'):
            dyck_prefix(rng, num_types, 4, 1)


def test_depth_and_length_control_make_an_ood_split():
    shallow = DyckDataset(num_samples=100, length=(4, 10), max_depth=3, seq_len=24, seed=1)
    deep = DyckDataset(num_samples=100, length=(20, 24), max_depth=8, seq_len=48, seed=2)
    depth = [max_depth_of(shallow.get_data_info(i)['prefix']) for i in range(100)]
    deep_depth = [max_depth_of(deep.get_data_info(i)['prefix']) for i in range(100)]
    assert max(depth) <= 3 < max(deep_depth)
    assert all(20 <= len(deep.get_data_info(i)['prefix']) <= 24 for i in range(100))


def test_dyck_dataset_packs_prompt_and_completion():
    dataset = DyckDataset(num_samples=5, length=(3, 6), seq_len=16, seed=0)
    again = DyckDataset(num_samples=5, length=(3, 6), seq_len=16, seed=0)
    item = dataset[0]
    info = dataset.get_data_info(0)
    tokens = item['inputs']
    assert tokens.shape == (17, ) and tokens.dtype == torch.long
    text = ByteTokenizer().decode(tokens.tolist())
    assert text == info['prefix'] + SEPARATOR + info['completion']
    meta = item['data_samples'].metainfo
    assert meta['prompt_length'] == len(info['prefix']) + 1
    assert (tokens[meta['num_tokens']:] == ByteTokenizer.pad_id).all()
    assert torch.equal(again[0]['inputs'], tokens)  # deterministic from the seed
    with pytest.raises(ValueError, match='too short'):
        DyckDataset(num_samples=1, length=(3, 20), seq_len=16)


def test_packed_text_windows_and_splits(tmp_path):
    first = ' '.join(str(i) for i in range(60))  # no two windows alike
    second = ' '.join(str(i) for i in range(1000, 1030))
    (tmp_path / 'a.txt').write_text(first)
    (tmp_path / 'b.md').write_text(second)
    full = PackedTextDataset(data_root=str(tmp_path), seq_len=15)
    assert all(full[i]['inputs'].shape == (16, ) for i in range(len(full)))
    total = len((first + '\n\n' + second).encode())
    assert len(full) == total // 16
    train = PackedTextDataset(data_root=str(tmp_path), seq_len=15, split_range=(0, 0.5))
    val = PackedTextDataset(data_root=str(tmp_path), seq_len=15, split_range=(0.5, 1))
    train_text = {tuple(train[i]['inputs'].tolist()) for i in range(len(train))}
    assert not train_text & {tuple(val[i]['inputs'].tolist()) for i in range(len(val))}
    (tmp_path / 'bad.txt').write_bytes(b'\xff\xfe bad')
    with pytest.raises(ValueError, match='bad.txt is not UTF-8'):
        PackedTextDataset(data_root=str(tmp_path), seq_len=15)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        PackedTextDataset(data_root=str(tmp_path / 'none'), seq_len=15)


def test_pydoc_text_ships_with_python():
    dataset = PackedTextDataset(seq_len=63, split_range=(0.99, 1.0))
    assert len(dataset) > 10 and dataset[0]['inputs'].shape == (64, )
