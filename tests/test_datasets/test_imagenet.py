"""Tests of ImageNetDataset on a generated tree: layouts, stable indices, errors, corrupt files."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from conftest import data_warnings

import ebtvision.datasets  # noqa: F401  (registers datasets and transforms)
from ebtvision.datasets import ImageNetDataset, LoadImageFromFile
from ebtvision.registry import DATASETS
from ebtvision.structures import ClassifyDataSample

WNIDS = ['n01440764', 'n01443537', 'n01484850']
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', size=8, keep_ratio=True),
    dict(type='CenterCrop', size=8),
    dict(type='NormalizeToSymmetric'),
    dict(type='PackClassifyInputs'),
]


@pytest.fixture(autouse=True)
def _reset_counter():
    LoadImageFromFile.reset_num_skipped()
    yield
    LoadImageFromFile.reset_num_skipped()


def _write(path, value=0):
    os.makedirs(osp.dirname(path), exist_ok=True)
    # cv2.imwrite picks the codec from the extension: write lower case, then rename.
    root, ext = osp.splitext(path)
    tmp = root + '_tmp' + ext.lower()
    assert cv2.imwrite(tmp, np.full((10, 12, 3), value, np.uint8))
    os.replace(tmp, path)


def _tree(root, train=True, val='folders'):
    """3 classes; train/<wnid>/ 2 images each; val as class folders or flat + meta/val.txt."""
    if train:
        for i, w in enumerate(WNIDS):
            _write(osp.join(root, 'train', w, f'{w}_{i}_a.JPEG'), 10 * i)
            _write(osp.join(root, 'train', w, f'{w}_{i}_b.png'), 10 * i)
    if val == 'folders':
        for i, w in enumerate(WNIDS):
            _write(osp.join(root, 'val', w, f'v{i}.JPEG'), 10 * i)
    elif val == 'flat':
        lines = []
        for k, label in enumerate([2, 0, 1, 2]):
            name = f'ILSVRC2012_val_{k:08d}.JPEG'
            _write(osp.join(root, 'val', name), 10 * label)
            lines.append(f'{name} {label}')
        os.makedirs(osp.join(root, 'meta'), exist_ok=True)
        with open(osp.join(root, 'meta', 'val.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')


def _labels(ds):
    return [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]


def test_train_split_sorted_stable_indices(tmp_path):
    root = str(tmp_path)
    _tree(root)
    os.makedirs(osp.join(root, 'train', '.hidden'))
    ds = ImageNetDataset(data_root=root, split='train')
    assert ds.metainfo['classes'] == tuple(WNIDS)
    assert ds.metainfo['task'] == 'classify'
    assert len(ds) == 6
    assert _labels(ds) == [0, 0, 1, 1, 2, 2]
    info = ds.get_data_info(2)
    assert info['img_path'] == osp.join(root, 'train', WNIDS[1], f'{WNIDS[1]}_1_a.JPEG')
    assert set(info) >= {'img_path', 'gt_label', 'sample_idx'}


def test_val_class_folders_use_train_indices(tmp_path):
    root = str(tmp_path)
    _tree(root)
    # Val has only two of the three classes: indices still come from train.
    os.rename(osp.join(root, 'val', WNIDS[0]), osp.join(root, 'val_removed'))
    ds = ImageNetDataset(data_root=root, split='val')
    assert ds.metainfo['classes'] == tuple(WNIDS)
    assert _labels(ds) == [1, 2]


def test_val_class_folders_without_train(tmp_path):
    root = str(tmp_path)
    _tree(root, train=False)
    ds = ImageNetDataset(data_root=root, split='val')
    assert ds.metainfo['classes'] == tuple(WNIDS) and _labels(ds) == [0, 1, 2]


def test_flat_val_with_meta_val_txt_and_pipeline(tmp_path):
    root = str(tmp_path)
    _tree(root, val='flat')
    ds = ImageNetDataset(data_root=root, split='val', pipeline=PIPELINE, test_mode=True)
    assert _labels(ds) == [2, 0, 1, 2]
    out = ds[0]
    assert out['inputs'].shape == (3, 8, 8) and out['inputs'].dtype == torch.float32
    sample = out['data_samples']
    assert isinstance(sample, ClassifyDataSample)
    assert sample.gt_label == 2 and sample.sample_idx == 0
    assert sample.img_path.endswith('ILSVRC2012_val_00000000.JPEG')
    assert tuple(sample.ori_shape) == (10, 12)
    # Pixel value 20 -> 20/255*2-1.
    assert torch.allclose(out['inputs'], torch.full((3, 8, 8), 20 / 255 * 2 - 1), atol=0.02)


def test_classes_override_and_flat_val_without_train(tmp_path):
    root = str(tmp_path)
    _tree(root, train=False, val='flat')
    with pytest.raises(FileNotFoundError, match='classes.txt'):
        ImageNetDataset(data_root=root, split='val')
    ds = ImageNetDataset(data_root=root, split='val', classes=['a', 'b', 'c'])
    assert ds.metainfo['classes'] == ('a', 'b', 'c') and _labels(ds) == [2, 0, 1, 2]
    (tmp_path / 'meta' / 'classes.txt').write_text('x first\ny\nz\n')
    ds = ImageNetDataset(data_root=root, split='val')
    assert ds.metainfo['classes'] == ('x', 'y', 'z')


def test_build_from_registry(tmp_path):
    root = str(tmp_path)
    _tree(root)
    ds = DATASETS.build(dict(type='ImageNetDataset', data_root=root, split='val',
                             pipeline=PIPELINE))
    assert ds[1]['data_samples'].gt_label == 1


def test_missing_and_empty_split(tmp_path):
    with pytest.raises(FileNotFoundError, match='train'):
        ImageNetDataset(data_root=str(tmp_path), split='train')
    os.makedirs(tmp_path / 'train' / WNIDS[0])
    with pytest.raises(FileNotFoundError, match='No images found'):
        ImageNetDataset(data_root=str(tmp_path), split='train')
    with pytest.raises(ValueError, match='split'):
        ImageNetDataset(data_root=str(tmp_path), split='test')


def test_val_wnid_mismatch(tmp_path):
    root = str(tmp_path)
    _tree(root)
    _write(osp.join(root, 'val', 'n99999999', 'x.JPEG'))
    with pytest.raises(ValueError, match='n99999999'):
        ImageNetDataset(data_root=root, split='val')


def test_label_out_of_range(tmp_path):
    root = str(tmp_path)
    _tree(root, val='flat')
    with open(osp.join(root, 'meta', 'val.txt'), 'a') as f:
        f.write('ILSVRC2012_val_00000000.JPEG 3\n')
    with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
        ImageNetDataset(data_root=root, split='val')


def test_listed_file_missing(tmp_path):
    root = str(tmp_path)
    _tree(root, val='flat')
    os.remove(osp.join(root, 'val', 'ILSVRC2012_val_00000001.JPEG'))
    with pytest.raises(FileNotFoundError, match=r"1 of 4 .*ILSVRC2012_val_00000001"):
        ImageNetDataset(data_root=root, split='val')


def test_malformed_ann_line(tmp_path):
    root = str(tmp_path)
    _tree(root, val='flat')
    with open(osp.join(root, 'meta', 'val.txt'), 'a') as f:
        f.write('\nno_label_here.JPEG\n')
    with pytest.raises(ValueError, match=r'val\.txt:6'):
        ImageNetDataset(data_root=root, split='val')


def test_explicit_ann_file_missing(tmp_path):
    root = str(tmp_path)
    _tree(root, val='flat')
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        ImageNetDataset(data_root=root, split='val', ann_file='meta/nope.txt')


def test_corrupt_train_image_is_refetched(tmp_path):
    root = str(tmp_path)
    _tree(root)
    bad = osp.join(root, 'train', WNIDS[0], 'bad.JPEG')
    with open(bad, 'wb') as f:
        f.write(b'not a jpeg')
    ds = ImageNetDataset(data_root=root, split='train', pipeline=PIPELINE)
    assert len(ds) == 7  # unchecked at start-up
    idx = [ds.get_data_info(i)['img_path'] for i in range(len(ds))].index(bad)
    np.random.seed(0)
    with data_warnings(match='bad.JPEG'):
        out = ds[idx]
    assert out['data_samples'].img_path != bad
    assert LoadImageFromFile.num_skipped >= 1
    # The skipped file travels with the sample (DataSkipHook counts it).
    assert out['data_samples'].skipped_files[0] == bad


def test_resize_after_load_enables_reduced_jpeg_decoding(tmp_path):
    root = str(tmp_path)
    _tree(root)
    big = osp.join(root, 'train', WNIDS[0], 'big.jpg')
    cv2.imwrite(big, np.full((160, 240, 3), 90, np.uint8))
    ds = ImageNetDataset(data_root=root, split='train', pipeline=PIPELINE)
    assert ds.loader is ds.pipeline.transforms[0]
    assert ds.loader.resize_after is ds.pipeline.transforms[1]
    idx = [ds.get_data_info(i)['img_path'] for i in range(len(ds))].index(big)
    # Resize to a short side of 8: decoded at 1/8 (20 x 30), then resized to 8 x 12.
    loaded = ds.loader(dict(img_path=big))
    assert loaded['decode_reduction'] == 8 and loaded['img'].shape == (20, 30, 3)
    assert ds[idx]['inputs'].shape == (3, 8, 8)


def test_corrupt_image_dropped_in_test_mode(tmp_path):
    root = str(tmp_path)
    _tree(root)
    bad = osp.join(root, 'val', WNIDS[1], 'bad.JPEG')
    with open(bad, 'wb') as f:
        f.write(b'')
    with data_warnings(match='Excluded 1 unreadable image'):
        ds = ImageNetDataset(data_root=root, split='val', test_mode=True, pipeline=PIPELINE)
    assert ds.skipped_files == [bad]
    assert LoadImageFromFile.num_skipped == 1
    assert _labels(ds) == [0, 1, 2]
    assert [ds[i]['data_samples'].gt_label for i in range(3)] == [0, 1, 2]
