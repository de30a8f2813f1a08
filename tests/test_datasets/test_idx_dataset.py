"""Tests of the idx reader and IdxImageDataset on tiny generated idx files."""
import gzip
import os.path as osp
import struct

import numpy as np
import pytest
import torch

import ebtvision.datasets  # noqa: F401  (registers datasets and transforms)
from ebtvision.datasets import (DIGIT_CLASSES, FASHION_MNIST_CLASSES, IdxImageDataset,
                                read_idx)
from ebtvision.registry import DATASETS
from ebtvision.structures import ClassifyDataSample

PIPELINE = [
    dict(type='Resize', size=8, keep_ratio=True),
    dict(type='CenterCrop', size=8),
    dict(type='NormalizeToSymmetric'),
    dict(type='PackClassifyInputs'),
]


def _idx_bytes(arr, code=0x08):
    header = struct.pack('>BBBB', 0, 0, code, arr.ndim) + struct.pack(f'>{arr.ndim}I',
                                                                       *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder('>')).tobytes()


def _write_idx(path, arr, code=0x08, gz=None):
    data = _idx_bytes(arr, code)
    gz = path.endswith('.gz') if gz is None else gz
    with open(path, 'wb') as f:
        f.write(gzip.compress(data) if gz else data)


def _make_set(root, n_train=5, n_test=3, gz=True, labels_n=None):
    rng = np.random.RandomState(0)
    ext = '.gz' if gz else ''
    arrays = {}
    for prefix, n in (('train', n_train), ('t10k', n_test)):
        images = rng.randint(0, 256, (n, 6, 4)).astype(np.uint8)
        labels = (np.arange(labels_n or n) % 10).astype(np.uint8)
        _write_idx(osp.join(root, f'{prefix}-images-idx3-ubyte{ext}'), images)
        _write_idx(osp.join(root, f'{prefix}-labels-idx1-ubyte{ext}'), labels)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize('gz', [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    arr = np.random.RandomState(1).randint(0, 256, (3, 5, 7)).astype(np.uint8)
    path = str(tmp_path / 'a-idx3-ubyte')  # no .gz suffix: gzip is sniffed
    _write_idx(path, arr, gz=gz)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (3, 5, 7)
    np.testing.assert_array_equal(out, arr)


def test_read_idx_big_endian_int32(tmp_path):
    arr = np.array([1, -2, 70000], dtype=np.int32)
    path = str(tmp_path / 'x')
    _write_idx(path, arr, code=0x0C)
    out = read_idx(path)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.isnative


def test_read_idx_errors(tmp_path):
    arr = np.zeros((2, 3), np.uint8)
    bad_magic = tmp_path / 'bad_magic'
    bad_magic.write_bytes(b'\x01\x00' + _idx_bytes(arr)[2:])
    with pytest.raises(ValueError, match='bad_magic.*bad magic'):
        read_idx(str(bad_magic))
    bad_dtype = tmp_path / 'bad_dtype'
    bad_dtype.write_bytes(_idx_bytes(arr, code=0x07))
    with pytest.raises(ValueError, match='dtype code 0x07'):
        read_idx(str(bad_dtype))
    truncated = tmp_path / 'truncated'
    truncated.write_bytes(_idx_bytes(arr)[:-1])
    with pytest.raises(ValueError, match='truncated.*5 data bytes'):
        read_idx(str(truncated))
    with pytest.raises(FileNotFoundError, match='missing'):
        read_idx(str(tmp_path / 'missing'))


@pytest.mark.parametrize('gz', [True, False])
def test_dataset_samples_and_pipeline(tmp_path, gz):
    root = tmp_path / 'fashion-mnist'
    root.mkdir()
    arrays = _make_set(str(root), gz=gz)
    ds = IdxImageDataset(data_root=str(root), split='test', pipeline=PIPELINE)
    assert len(ds) == 3 and ds.metainfo['classes'] == FASHION_MNIST_CLASSES
    assert ds.images.dtype == np.uint8 and ds.images.shape == (3, 6, 4)
    info = ds.get_data_info(2)
    assert info['gt_label'] == 2
    assert info['img_path'].endswith('t10k-images-idx3-ubyte' + ('.gz' if gz else '') + '#2')

    out = ds[1]
    assert out['inputs'].shape == (3, 8, 8) and out['inputs'].dtype == torch.float32
    assert out['inputs'].min() >= -1 and out['inputs'].max() <= 1
    sample = out['data_samples']
    assert isinstance(sample, ClassifyDataSample)
    assert sample.gt_label == 1 and sample.sample_idx == 1
    assert tuple(sample.ori_shape) == (6, 4)

    # Without a pipeline: float32 RGB [0, 1], gray repeated, exactly the stored pixels.
    raw = IdxImageDataset(data_root=str(root), split='train')[4]
    img = raw['img']
    assert img.dtype == np.float32 and img.shape == (6, 4, 3)
    np.testing.assert_allclose(img[:, :, 0], arrays['train'][0][4] / 255.0, rtol=1e-6)
    assert (img[:, :, 0] == img[:, :, 2]).all()


def test_digit_classes_and_registry(tmp_path):
    _make_set(str(tmp_path))
    ds = DATASETS.build(dict(type='IdxImageDataset', data_root=str(tmp_path), split='train',
                             pipeline=PIPELINE, indices=2))
    assert ds.metainfo['classes'] == DIGIT_CLASSES
    assert len(ds) == 2 and ds[1]['data_samples'].gt_label == 1


def test_count_mismatch(tmp_path):
    _make_set(str(tmp_path), labels_n=4)  # 5 train images, 4 labels
    with pytest.raises(ValueError, match='5 images .* 4 labels'):
        IdxImageDataset(data_root=str(tmp_path), split='train')


def test_missing_folder_or_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install dataset-fashion-mnist'):
        IdxImageDataset(data_root=str(tmp_path / 'nope'))
    with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte.*data_root='):
        IdxImageDataset(data_root=str(tmp_path))


def test_load_image_in_pipeline_rejected(tmp_path):
    _make_set(str(tmp_path))
    with pytest.raises(ValueError, match='LoadImageFromFile'):
        IdxImageDataset(data_root=str(tmp_path), pipeline=[dict(type='LoadImageFromFile')])


def test_pack_classify_inputs_requires_label():
    from ebtvision.datasets import PackClassifyInputs
    with pytest.raises(KeyError, match='gt_label'):
        PackClassifyInputs()(dict(img=np.zeros((4, 4, 3), np.float32)))
    assert 'gt_label' in repr(PackClassifyInputs())


@pytest.mark.skipif(not osp.isdir('/usr/share/datasets/fashion-mnist'),
                    reason='dataset-fashion-mnist not installed')
def test_real_fashion_mnist_test_split():
    ds = IdxImageDataset(split='test', indices=4, pipeline=PIPELINE)
    assert len(ds) == 4 and ds.images.shape == (10000, 28, 28)
    assert ds[0]['inputs'].shape == (3, 8, 8)
