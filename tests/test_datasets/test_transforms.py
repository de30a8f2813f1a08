"""Tests of the data transforms on tiny generated images."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from conftest import data_warnings

from ebtvision.datasets.transforms import (CenterCrop, LoadImageFromFile, NormalizeToSymmetric,
                                           PackDenoiseInputs, RandomCrop, RandomFlip, Resize)
from ebtvision.datasets.transforms.loading import choose_reduction, link_reduced_decode
from ebtvision.registry import TRANSFORMS
from ebtvision.structures import DenoiseDataSample


@pytest.fixture(autouse=True)
def _reset_counter():
    LoadImageFromFile.reset_num_skipped()
    yield
    LoadImageFromFile.reset_num_skipped()


def _load(path, **kwargs):
    out = LoadImageFromFile(**kwargs)(dict(img_path=str(path)))
    assert out is not None
    img = out['img']
    assert img.dtype == np.float32 and img.ndim == 3
    assert img.min() >= 0.0 and img.max() <= 1.0
    return out


def _ramp(h=6, w=8, c=3):
    return np.arange(h * w * c, dtype=np.float32).reshape(h, w, c) / (h * w * c)


# ---------------------------------------------------------------- loading


def test_load_8bit_red_is_rgb(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in OpenCV's BGR order
    bgr[0, 0] = (0, 0, 51)
    cv2.imwrite(str(tmp_path / 'red.png'), bgr)
    out = _load(tmp_path / 'red.png')
    img = out['img']
    assert img.shape == (5, 7, 3) and out['ori_shape'] == (5, 7)
    assert out['img_path'] == str(tmp_path / 'red.png')
    np.testing.assert_allclose(img[1, 1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(img[0, 0], [0.2, 0.0, 0.0], atol=1e-6)


def test_load_grayscale(tmp_path):
    gray = np.full((4, 6), 128, np.uint8)
    cv2.imwrite(str(tmp_path / 'g.png'), gray)
    img = _load(tmp_path / 'g.png')['img']
    assert img.shape == (4, 6, 3)
    np.testing.assert_allclose(img, 128 / 255, atol=1e-6)
    assert _load(tmp_path / 'g.png', to_rgb=False)['img'].shape == (4, 6, 1)


def test_load_rgba(tmp_path):
    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 0] = 255  # blue
    bgra[0, 0, 3] = 255  # opaque
    bgra[0, 1, 3] = 0  # fully transparent
    bgra[0, 2, 3] = 51  # 20 % opaque
    cv2.imwrite(str(tmp_path / 'a.png'), bgra)
    img = _load(tmp_path / 'a.png')['img']
    assert img.shape == (3, 3, 3)
    np.testing.assert_allclose(img[0, 0], [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(img[0, 1], [1, 1, 1], atol=1e-6)  # white background
    np.testing.assert_allclose(img[0, 2], [0.8, 0.8, 1.0], atol=1e-6)
    dropped = _load(tmp_path / 'a.png', alpha='drop')['img']
    np.testing.assert_allclose(dropped[0, 1], [0, 0, 1], atol=1e-6)
    with pytest.raises(ValueError):
        LoadImageFromFile(alpha='black')


def test_load_16bit(tmp_path):
    img16 = np.zeros((2, 2, 3), np.uint16)
    img16[0, 0] = 65535
    img16[0, 1] = 32768
    cv2.imwrite(str(tmp_path / 'd.png'), img16)
    img = _load(tmp_path / 'd.png')['img']
    np.testing.assert_allclose(img[0, 0], 1.0)
    np.testing.assert_allclose(img[0, 1], 0.5, atol=1e-4)
    np.testing.assert_allclose(img[1, 1], 0.0)


@pytest.mark.parametrize('name,data', [('missing.png', None), ('zero.jpg', b''),
                                       ('junk.jpg', b'\x00\x01garbage' * 20)])
def test_load_failure_returns_none(tmp_path, name, data):
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    with data_warnings(match=name) as logged:
        assert LoadImageFromFile()(dict(img_path=str(path))) is None
    assert len(logged) == 1
    assert LoadImageFromFile.num_skipped == 1


def test_load_failure_warns_once_per_file(tmp_path):
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'junk' * 20)
    loader = LoadImageFromFile()
    with data_warnings() as logged:
        for _ in range(5):
            assert loader(dict(img_path=str(bad))) is None
    # Counted per draw, named once (it used to warn on every draw).
    assert LoadImageFromFile.num_skipped == 5
    assert len(logged) == 1 and 'bad.jpg' in logged[0] and 'OpenCV cannot decode' in logged[0]


def test_decoded_image_cache(tmp_path, monkeypatch):
    from ebtvision.datasets.transforms import loading
    paths = []
    for i in range(3):
        img = np.full((20, 30, 3), 40 * (i + 1), np.uint8)
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], img)
    decodes = []
    real_decode = loading.decode_image_file
    monkeypatch.setattr(loading, 'decode_image_file',
                        lambda path, need=None: decodes.append(path) or real_decode(path, need))
    one_image = 20 * 30 * 3 * 4  # float32 bytes
    loader = LoadImageFromFile(cache_mb=2.5 * one_image / 2**20)  # room for two
    first = loader(dict(img_path=paths[0]))['img']
    again = loader(dict(img_path=paths[0]))['img']
    assert decodes == paths[:1]  # the second draw came from the cache
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(again[0, 0], [40 / 255] * 3)
    with pytest.raises(ValueError, match='read-only'):
        again[0, 0, 0] = 1.0  # a transform writing into it fails instead of corrupting it
    loader(dict(img_path=paths[1]))
    loader(dict(img_path=paths[0]))  # now the most recent
    loader(dict(img_path=paths[2]))  # evicts paths[1], the least recently used
    loader(dict(img_path=paths[0]))
    loader(dict(img_path=paths[1]))
    assert decodes == [paths[0], paths[1], paths[2], paths[1]]
    # Without a cache every draw decodes, and a bad budget is refused.
    uncached = LoadImageFromFile()
    uncached(dict(img_path=paths[0]))
    uncached(dict(img_path=paths[0]))
    assert decodes[-2:] == [paths[0], paths[0]]
    with pytest.raises(ValueError, match='cache_mb'):
        LoadImageFromFile(cache_mb=-1)


# ---------------------------------------------------------------- reduced decoding


def _smooth_jpeg(path, height, width, gray=False, params=()):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (6, 6) if gray else (6, 6, 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    flags = [cv2.IMWRITE_JPEG_QUALITY, 95, *params]
    assert cv2.imwrite(str(path), img, flags)
    return str(path)


def _linked(*transforms):
    pipeline = [LoadImageFromFile(**(transforms[0] if transforms and isinstance(
        transforms[0], dict) else {}))]
    pipeline += [t for t in transforms if not isinstance(t, dict)]
    link_reduced_decode(pipeline)
    return pipeline


def _run(pipeline, path):
    results = dict(img_path=path)
    for transform in pipeline:
        results = transform(results)
    return results


def test_choose_reduction_keeps_at_least_the_needed_size():
    assert choose_reduction((1000, 1500), (64, 96)) == 8
    assert choose_reduction((1000, 1500), (125, 187)) == 8
    assert choose_reduction((1000, 1500), (126, 187)) == 4
    assert choose_reduction((1000, 1500), (300, 450)) == 2
    assert choose_reduction((1000, 1500), (501, 10)) == 1


def test_resize_after_load_decodes_jpeg_reduced_with_the_same_geometry(tmp_path):
    # 1001 x 1499 decodes to 126 x 188 at 1/8: sizing the Resize from that would give
    # 64 x 95; the full-size image gives 64 x 96, and so must the reduced decode.
    path = _smooth_jpeg(tmp_path / 'big.jpg', 1001, 1499)
    full = [LoadImageFromFile(auto_reduce=False), Resize(64, keep_ratio=True), RandomCrop(32)]
    reduced = _linked(Resize(64, keep_ratio=True), RandomCrop(32))
    loaded = reduced[0](dict(img_path=path))
    assert loaded['decode_reduction'] == 8 and loaded['img'].shape == (126, 188, 3)
    assert loaded['ori_shape'] == (1001, 1499) and loaded['img_shape'] == (126, 188)
    assert reduced[1](loaded)['img'].shape == (64, 96, 3)
    np.random.seed(3)
    expected = _run(full, path)
    np.random.seed(3)
    got = _run(reduced, path)
    assert 'decode_reduction' not in expected
    assert got['scale_factor'] == pytest.approx(expected['scale_factor'])
    assert got['crop_bbox'] == expected['crop_bbox']  # the crop sees the same region
    assert got['img'].shape == expected['img'].shape == (32, 32, 3)
    assert np.abs(got['img'] - expected['img']).mean() < 0.01


def test_reduction_stops_where_the_resize_would_need_more(tmp_path):
    path = _smooth_jpeg(tmp_path / 'big.jpg', 1000, 1500)
    loader = _linked(Resize(300, keep_ratio=True))[0]
    out = loader(dict(img_path=path))
    # 1/4 would give 250 < 300 rows: 1/2 is the most that keeps the output sharp.
    assert out['decode_reduction'] == 2 and out['img'].shape[:2] == (500, 750)
    # Enlarging: nothing to gain, full size.
    loader = _linked(Resize((2000, 3000)))[0]
    assert 'decode_reduction' not in loader(dict(img_path=path))


def test_no_reduction_without_a_resize_right_after(tmp_path):
    path = _smooth_jpeg(tmp_path / 'big.jpg', 400, 600)
    # A crop at native resolution (or anything between the loader and the Resize)
    # would see a different image at reduced size.
    for pipeline in (_linked(RandomCrop(32)), _linked(RandomFlip(), Resize(16))):
        out = pipeline[0](dict(img_path=path))
        assert out['img'].shape == (400, 600, 3) and 'decode_reduction' not in out
    loader = LoadImageFromFile()  # not linked: never reduced
    assert loader(dict(img_path=path))['img'].shape == (400, 600, 3)


def test_decode_min_size_asks_for_a_reduced_decode(tmp_path):
    jpeg = _smooth_jpeg(tmp_path / 'big.jpg', 1000, 1500)
    out = LoadImageFromFile(decode_min_size=100)(dict(img_path=jpeg))
    assert out['decode_reduction'] == 8 and out['img'].shape[:2] == (125, 188)
    assert out['ori_shape'] == (1000, 1500)
    out = LoadImageFromFile(decode_min_size=(200, 100))(dict(img_path=jpeg))
    assert out['decode_reduction'] == 4
    # PNGs gain nothing from OpenCV's reduced modes: always full size.
    png = str(tmp_path / 'big.png')
    cv2.imwrite(png, cv2.imread(jpeg))
    assert LoadImageFromFile(decode_min_size=100)(dict(img_path=png))['img'].shape == (
        1000, 1500, 3)


def test_reduced_grayscale_jpeg_stays_grayscale(tmp_path):
    path = _smooth_jpeg(tmp_path / 'g.jpg', 800, 640, gray=True)
    out = LoadImageFromFile(to_rgb=False, decode_min_size=100)(dict(img_path=path))
    assert out['decode_reduction'] == 4 and out['img'].shape == (200, 160, 1)
    full = LoadImageFromFile(to_rgb=False)(dict(img_path=path))['img']
    small = cv2.resize(full, (160, 200), interpolation=cv2.INTER_AREA)[:, :, None]
    assert np.abs(out['img'] - small).mean() < 0.01


def test_reduced_decode_ignores_exif_orientation_like_a_full_decode(tmp_path):
    from PIL import Image
    path = str(tmp_path / 'rotated.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees to display"
    Image.fromarray(np.full((200, 320, 3), 128, np.uint8)).save(path, exif=exif.tobytes())
    out = LoadImageFromFile(decode_min_size=51)(dict(img_path=path))  # 1/4 is 50 rows
    assert out['decode_reduction'] == 2
    assert out['img'].shape[:2] == (100, 160) and out['ori_shape'] == (200, 320)
    assert LoadImageFromFile()(dict(img_path=path))['img'].shape[:2] == (200, 320)


def test_huge_image_decoded_at_full_size_is_warned_once(tmp_path):
    path = _smooth_jpeg(tmp_path / 'huge.jpg', 300, 400)
    crop_only = _linked(dict(huge_pixels=100_000), RandomCrop(16))
    with data_warnings() as logged:
        for _ in range(3):
            assert _run(crop_only, path)['img'].shape == (16, 16, 3)
    assert len(logged) == 1
    assert 'huge.jpg' in logged[0] and '400x300' in logged[0]
    assert 'Resize right after LoadImageFromFile' in logged[0]
    # Reduced for a following Resize: fast, no warning.
    with data_warnings() as logged:
        _run(_linked(dict(huge_pixels=100_000), Resize(32, keep_ratio=True)), path)
    assert logged == []
    png = str(tmp_path / 'huge.png')
    cv2.imwrite(png, cv2.imread(path))
    with data_warnings(match='huge.png.*only JPEGs'):
        _run(_linked(dict(huge_pixels=100_000), Resize(32, keep_ratio=True)), png)


# ---------------------------------------------------------------- geometry


def test_random_crop_is_a_window():
    img = _ramp(10, 12)
    np.random.seed(0)
    out = RandomCrop(size=(4, 5))(dict(img=img.copy()))
    x1, y1, x2, y2 = out['crop_bbox']
    assert out['img'].shape == (4, 5, 3) and out['img_shape'] == (4, 5)
    np.testing.assert_array_equal(out['img'], img[y1:y2, x1:x2])
    # Same seed, same crop: reproducible under MMEngine's seeding.
    np.random.seed(0)
    assert RandomCrop(size=(4, 5))(dict(img=img.copy()))['crop_bbox'] == (x1, y1, x2, y2)


def test_random_crop_small_image():
    img = _ramp(3, 4)
    padded = RandomCrop(size=6)(dict(img=img.copy()))['img']
    assert padded.shape == (6, 6, 3)
    # Reflection padding only reuses existing values.
    assert set(np.unique(padded)) <= set(np.unique(img))
    enlarged = RandomCrop(size=6, pad_if_needed=False)(dict(img=img.copy()))['img']
    assert enlarged.shape == (6, 6, 3)
    assert enlarged.min() >= img.min() and enlarged.max() <= img.max()


def test_center_crop():
    img = _ramp(6, 8)
    out = CenterCrop(size=(2, 4))(dict(img=img.copy()))
    np.testing.assert_array_equal(out['img'], img[2:4, 2:6])
    assert CenterCrop(10)(dict(img=img.copy()))['img'].shape == (10, 10, 3)


def test_resize():
    img = _ramp(8, 12)
    out = Resize(size=(4, 6))(dict(img=img.copy()))
    assert out['img'].shape == (4, 6, 3) and out['scale_factor'] == (0.5, 0.5)
    # INTER_AREA halving averages 2x2 blocks.
    np.testing.assert_allclose(out['img'][0, 0], img[:2, :2].mean(axis=(0, 1)), atol=1e-6)
    assert Resize(size=4, keep_ratio=True)(dict(img=img.copy()))['img'].shape == (4, 6, 3)
    assert Resize(size=(4, 4), keep_ratio=True)(dict(img=img.copy()))['img'].shape == (3, 4, 3)
    big = Resize(size=20)(dict(img=img.copy()))['img']
    assert big.shape == (20, 20, 3)
    assert big.min() >= img.min() and big.max() <= img.max()  # cubic overshoot clipped
    gray = Resize(size=(3, 3))(dict(img=_ramp(6, 6, 1)))['img']
    assert gray.shape == (3, 3, 1)


def test_random_flip():
    img = _ramp(4, 5)
    out = RandomFlip(prob=1.0)(dict(img=img.copy()))
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    assert out['flip'] and out['flip_direction'] == 'horizontal'
    assert out['img'].flags['C_CONTIGUOUS']
    out = RandomFlip(prob=1.0, direction='vertical')(dict(img=img.copy()))
    np.testing.assert_array_equal(out['img'], img[::-1])
    out = RandomFlip(prob=0.0)(dict(img=img.copy()))
    np.testing.assert_array_equal(out['img'], img)
    assert not out['flip'] and out['flip_direction'] is None
    np.random.seed(3)
    flips = [RandomFlip()(dict(img=img))['flip'] for _ in range(200)]
    assert 60 < sum(flips) < 140
    with pytest.raises(ValueError):
        RandomFlip(direction='sideways')


# ---------------------------------------------------------------- values & packing


def test_normalize_to_symmetric():
    img = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    out = NormalizeToSymmetric()(dict(img=img))['img']
    np.testing.assert_allclose(out, [[[-1.0, 0.0, 1.0]]])
    assert out.dtype == np.float32
    assert TRANSFORMS.get('ScaleToSymmetric') is NormalizeToSymmetric


def test_pack_denoise_inputs():
    img = _ramp(4, 5)
    results = dict(img=img, img_path='/x/a.png', sample_idx=3, ori_shape=(4, 5), other=1)
    out = PackDenoiseInputs()(results)
    inputs = out['inputs']
    assert isinstance(inputs, torch.Tensor) and inputs.dtype == torch.float32
    assert inputs.shape == (3, 4, 5) and inputs.is_contiguous()
    torch.testing.assert_close(inputs, torch.from_numpy(img).permute(2, 0, 1))
    sample = out['data_samples']
    assert isinstance(sample, DenoiseDataSample)
    assert sample.img_path == '/x/a.png' and sample.sample_idx == 3
    assert sample.ori_shape == (4, 5) and 'other' not in sample.metainfo_keys()


def test_compose_from_registry(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((9, 9, 3), 255, np.uint8))
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomCrop', size=4),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Resize', size=2),
        dict(type='ScaleToSymmetric'),
        dict(type='PackDenoiseInputs'),
    ]
    with DefaultScope.overwrite_default_scope('ebtvision'):
        compose = Compose(pipeline)
    out = compose(dict(img_path=str(tmp_path / 'a.png'), sample_idx=0))
    torch.testing.assert_close(out['inputs'], torch.ones(3, 2, 2))
    # A failed load stops the pipeline with None.
    with data_warnings(match='nope.png'):
        assert compose(dict(img_path=str(tmp_path / 'nope.png'))) is None
    assert 'LoadImageFromFile' in repr(compose)
