"""Tests of ImageFolderDataset: scanning, file lists, errors, corrupt files, registry."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from conftest import data_warnings

import ebtvision.datasets  # noqa: F401  (registers the dataset and transforms)
from ebtvision.datasets import (ImageFolderDataset, LoadImageFromFile, resolve_data_root,
                                skimage_data_dir)
from ebtvision.registry import DATASETS
from ebtvision.structures import DenoiseDataSample

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='CenterCrop', size=8),
    dict(type='NormalizeToSymmetric'),
    dict(type='PackDenoiseInputs'),
]


@pytest.fixture(autouse=True)
def _reset_counter():
    LoadImageFromFile.reset_num_skipped()
    yield
    LoadImageFromFile.reset_num_skipped()


def _write(path, shape=(12, 10, 3), value=None):
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = (np.full(shape, value, np.uint8) if value is not None else
           np.random.RandomState(0).randint(0, 256, shape).astype(np.uint8))
    # cv2.imwrite picks the codec from the extension, so write lower case and rename.
    root, ext = osp.splitext(path)
    tmp = root + '_tmp' + ext.lower()
    assert cv2.imwrite(tmp, img)
    os.replace(tmp, path)


def _rel_paths(ds, root):
    return [osp.relpath(ds.get_data_info(i)['img_path'], root) for i in range(len(ds))]


def test_recursive_scan_sorted_mixed_case(tmp_path):
    root = str(tmp_path)
    for rel in ['b.png', 'A.JPG', 'sub/c.jpeg', 'sub/deep/d.tif', 'sub/E.PnG', 'z.bmp']:
        _write(osp.join(root, rel))
    # Not images / hidden: ignored.
    (tmp_path / 'notes.txt').write_text('x')
    _write(osp.join(root, '.hidden.jpg'))
    _write(osp.join(root, '.cache', 'f.jpg'))

    ds = ImageFolderDataset(data_root=root)
    expected = sorted(['b.png', 'A.JPG', 'sub/c.jpeg', 'sub/deep/d.tif', 'sub/E.PnG', 'z.bmp'])
    assert _rel_paths(ds, root) == expected
    assert all(osp.isabs(ds.get_data_info(i)['img_path']) for i in range(len(ds)))
    assert ds.metainfo['task'] == 'denoise'

    only_png = ImageFolderDataset(data_root=root, extensions=['PNG'])
    assert _rel_paths(only_png, root) == ['b.png', 'sub/E.PnG']


def test_relative_data_root_becomes_absolute(tmp_path, monkeypatch):
    _write(str(tmp_path / 'imgs' / 'a.png'))
    monkeypatch.chdir(tmp_path)
    ds = ImageFolderDataset(data_root='imgs')
    assert ds.get_data_info(0)['img_path'] == str(tmp_path / 'imgs' / 'a.png')


def test_file_list_restricts_and_orders(tmp_path):
    root = str(tmp_path)
    for rel in ['a.png', 'b.png', 'sub/c.png']:
        _write(osp.join(root, rel))
    ds = ImageFolderDataset(data_root=root, file_list=['sub/c.png', 'a.png'])
    assert _rel_paths(ds, root) == ['sub/c.png', 'a.png']

    # A text file, relative to data_root, with a comment and a blank line.
    (tmp_path / 'val.txt').write_text('# val split\nb.png\n\nsub/c.png\n')
    ds = ImageFolderDataset(data_root=root, file_list='val.txt')
    assert _rel_paths(ds, root) == ['b.png', 'sub/c.png']
    # ... or given as an absolute path.
    ds = ImageFolderDataset(data_root=root, file_list=str(tmp_path / 'val.txt'))
    assert len(ds) == 2


def test_missing_file_list_entry_raises(tmp_path):
    _write(str(tmp_path / 'a.png'))
    with pytest.raises(FileNotFoundError, match='nope.png'):
        ImageFolderDataset(data_root=str(tmp_path), file_list=['a.png', 'nope.png'])
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        ImageFolderDataset(data_root=str(tmp_path), file_list='missing.txt')


def test_empty_or_missing_folder_raises_helpful_error(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('no images here')
    with pytest.raises(FileNotFoundError) as err:
        ImageFolderDataset(data_root=str(empty))
    msg = str(err.value)
    assert str(empty) in msg and '.jpg' in msg and '.png' in msg

    missing = tmp_path / 'does_not_exist'
    with pytest.raises(FileNotFoundError, match='does_not_exist') as err:
        ImageFolderDataset(data_root=str(missing))
    assert '.jpeg' in str(err.value)


def test_kwargs_reach_base_dataset(tmp_path):
    for name in ['a.png', 'b.png', 'c.png']:
        _write(str(tmp_path / name))
    ds = ImageFolderDataset(
        data_root=str(tmp_path), serialize_data=False, lazy_init=True, indices=2)
    assert not ds._fully_initialized
    ds.full_init()
    assert len(ds) == 2 and ds.data_list[0]['img_path'].endswith('a.png')


def test_pipeline_output(tmp_path):
    _write(str(tmp_path / 'a.png'), shape=(12, 10, 3), value=255)
    ds = ImageFolderDataset(data_root=str(tmp_path), pipeline=PIPELINE)
    out = ds[0]
    assert out['inputs'].shape == (3, 8, 8) and out['inputs'].dtype == torch.float32
    assert torch.allclose(out['inputs'], torch.ones(3, 8, 8))
    sample = out['data_samples']
    assert isinstance(sample, DenoiseDataSample)
    assert sample.img_path == str(tmp_path / 'a.png')
    assert sample.sample_idx == 0 and tuple(sample.ori_shape) == (12, 10)


@pytest.mark.parametrize('bad_name,content', [('bad.jpg', 'random'), ('empty.jpg', 'zero')])
def test_train_mode_corrupt_file_is_refetched(tmp_path, bad_name, content):
    _write(str(tmp_path / 'good.png'))
    bad = tmp_path / bad_name
    bad.write_bytes(np.random.RandomState(1).bytes(300) if content == 'random' else b'')
    # Unchecked at start-up: the bad file is part of the training list.
    ds = ImageFolderDataset(
        data_root=str(tmp_path), file_list=[bad_name, 'good.png'], pipeline=PIPELINE)
    assert len(ds) == 2

    np.random.seed(0)
    with data_warnings(match=bad_name):
        out = ds[0]
    assert out['data_samples'].img_path == str(tmp_path / 'good.png')
    assert LoadImageFromFile.num_skipped >= 1


def test_train_mode_warns_once_per_bad_file_and_records_skips(tmp_path):
    good = str(tmp_path / 'good.png')
    _write(good)
    bad = [str(tmp_path / 'bad_a.jpg'), str(tmp_path / 'bad_b.jpg')]
    for path in bad:
        with open(path, 'wb') as f:
            f.write(b'junk')
    ds = ImageFolderDataset(data_root=str(tmp_path), pipeline=PIPELINE)
    assert [ds.get_data_info(i)['img_path'] for i in range(3)] == bad + [good]
    np.random.seed(0)
    skipped = []
    with data_warnings() as logged:
        for idx in [0, 1] * 10:
            out = ds[idx]
            assert out['data_samples'].img_path == good
            skipped += out['data_samples'].metainfo.get('skipped_files', [])
    # One warning per bad file (not per draw), every skipped draw recorded.
    assert len(logged) == 2 and all(any(p in m for m in logged) for p in bad)
    assert len(skipped) == LoadImageFromFile.num_skipped >= 20
    assert set(skipped) == set(bad)
    assert 'skipped_files' not in ds[2]['data_samples'].metainfo


def test_train_mode_gives_up_naming_the_files(tmp_path):
    (tmp_path / 'bad.jpg').write_bytes(b'junk')
    ds = ImageFolderDataset(data_root=str(tmp_path), pipeline=PIPELINE, max_refetch=3)
    with data_warnings(), pytest.raises(RuntimeError, match=r'4 draws.*bad\.jpg'):
        ds[0]


def test_test_mode_excludes_corrupt_files(tmp_path):
    _write(str(tmp_path / 'good.png'))
    (tmp_path / 'bad.jpg').write_bytes(np.random.RandomState(2).bytes(300))
    (tmp_path / 'empty.png').write_bytes(b'')
    with data_warnings() as record:
        ds = ImageFolderDataset(data_root=str(tmp_path), pipeline=PIPELINE, test_mode=True)
    messages = ' '.join(record)
    assert 'bad.jpg' in messages and 'empty.png' in messages
    assert 'Excluded 2 unreadable image(s) of 3 checked' in messages
    assert len(ds) == 1
    assert LoadImageFromFile.num_skipped == 2
    assert sorted(osp.basename(p) for p in ds.skipped_files) == ['bad.jpg', 'empty.png']
    assert ds[0]['data_samples'].img_path == str(tmp_path / 'good.png')


def test_test_mode_int_indices_decodes_only_what_is_needed(tmp_path):
    _write(str(tmp_path / 'b_good.png'))
    _write(str(tmp_path / 'c_good.png'))
    (tmp_path / 'a_bad.jpg').write_bytes(b'junk')
    (tmp_path / 'd_bad.jpg').write_bytes(b'junk')
    with data_warnings(match='a_bad.jpg'):
        ds = ImageFolderDataset(data_root=str(tmp_path), test_mode=True, indices=1)
    assert _rel_paths(ds, str(tmp_path)) == ['b_good.png']
    assert [osp.basename(p) for p in ds.skipped_files] == ['a_bad.jpg']  # d_bad unchecked
    with data_warnings(match='d_bad.jpg'):
        ds = ImageFolderDataset(data_root=str(tmp_path), test_mode=True, indices=-1)
    assert _rel_paths(ds, str(tmp_path)) == ['c_good.png']


def test_test_mode_all_unreadable_raises(tmp_path):
    (tmp_path / 'bad.jpg').write_bytes(b'not an image')
    with data_warnings(match='bad.jpg'), pytest.raises(FileNotFoundError, match='decoded'):
        ImageFolderDataset(data_root=str(tmp_path), test_mode=True)


def test_build_from_registry(tmp_path):
    _write(str(tmp_path / 'a.png'))
    cfg = dict(type='ImageFolderDataset', data_root=str(tmp_path), pipeline=PIPELINE)
    # No default scope: the dataset builds its pipeline from ebtvision's registry.
    ds = DATASETS.build(cfg)
    assert ds[0]['inputs'].shape == (3, 8, 8)
    # Explicit scope through the mmengine root registry.
    from mmengine.registry import DATASETS as ROOT_DATASETS
    ds = ROOT_DATASETS.build(dict(cfg, _scope_='ebtvision'))
    assert isinstance(ds, ImageFolderDataset)
    with DefaultScope.overwrite_default_scope('ebtvision'):
        ds = ROOT_DATASETS.build(cfg)
    assert ds[0]['inputs'].shape == (3, 8, 8)


def test_skimage_root():
    assert resolve_data_root('skimage://') == skimage_data_dir()
    assert osp.isfile(osp.join(skimage_data_dir(), 'astronaut.png'))
    ds = ImageFolderDataset(
        data_root='skimage://',
        file_list=['astronaut.png', 'camera.png', 'logo.png', 'rocket.jpg'],
        pipeline=PIPELINE,
        test_mode=True)
    assert len(ds) == 4 and not ds.skipped_files
    for i in range(len(ds)):
        out = ds[i]
        assert out['inputs'].shape == (3, 8, 8)
        assert out['inputs'].min() >= -1 and out['inputs'].max() <= 1
