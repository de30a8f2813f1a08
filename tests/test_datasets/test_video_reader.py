"""Truncated videos: the frames that decode are used, and clips are sampled from them."""
import os
import struct

import cv2
import numpy as np
import pytest

from conftest import data_warnings, write_video
from ebtvision.datasets import LoadVideoClip, VideoFolderDataset, VideoReader, VideoReadError
from ebtvision.datasets.video_reader import VideoTruncatedError
from ebtvision.datasets.video_sampling import ClipSampler

FPS = 25.0
TBF = 1.0 / FPS  # every frame is on the timeline: clip positions are frame indices


@pytest.fixture(autouse=True)
def _reset_counter():
    LoadVideoClip.reset_num_skipped()
    yield
    LoadVideoClip.reset_num_skipped()


# -- mp4 with its index first ("faststart"), so a cut-off file still opens -------------
_CONTAINERS = {b'moov', b'trak', b'mdia', b'minf', b'stbl', b'edts', b'dinf', b'udta'}


def _boxes(buf, start, end):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack('>I4s', bytes(buf[pos:pos + 8]))
        header = 8
        if size == 1:
            size, header = struct.unpack('>Q', bytes(buf[pos + 8:pos + 16]))[0], 16
        elif size == 0:
            size = end - pos
        yield kind, pos, pos + header, pos + size
        pos += size


def _shift_chunk_offsets(buf, start, end, shift):
    for kind, _, body, stop in _boxes(buf, start, end):
        if kind in _CONTAINERS:
            _shift_chunk_offsets(buf, body, stop, shift)
        elif kind in (b'stco', b'co64'):
            fmt, width = ('>I', 4) if kind == b'stco' else ('>Q', 8)
            count = struct.unpack('>I', bytes(buf[body + 4:body + 8]))[0]
            for i in range(count):
                at = body + 8 + i * width
                value = struct.unpack(fmt, bytes(buf[at:at + width]))[0]
                buf[at:at + width] = struct.pack(fmt, value + shift)


def faststart(data: bytes) -> bytes:
    """Move the ``moov`` box (the index) before the media data, as qt-faststart does."""
    boxes = list(_boxes(data, 0, len(data)))
    kinds = [b[0] for b in boxes]
    assert kinds[0] == b'ftyp' and b'moov' in kinds and b'mdat' in kinds
    _, start, _, stop = boxes[kinds.index(b'moov')]
    moov = bytearray(data[start:stop])
    _shift_chunk_offsets(moov, 8, len(moov), len(moov))  # everything after moves by it
    rest = b''.join(data[b[1]:b[3]] for b in boxes[1:] if b[0] != b'moov')
    return data[boxes[0][1]:boxes[0][3]] + bytes(moov) + rest


def opencv_frames(path):
    """All frames OpenCV decodes, RGB."""
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[:, :, ::-1])
    cap.release()
    return np.stack(frames)


@pytest.fixture
def truncated_mp4(tmp_path):
    """A 100-frame mp4 (index first) cut to 65 % of its bytes, and its full frames."""
    full = str(tmp_path / 'full.mp4')
    write_video(full, 100, fps=FPS, size=(48, 64))
    data = faststart(open(full, 'rb').read())
    with open(full, 'wb') as f:
        f.write(data)
    cut = str(tmp_path / 'videos' / 'cut.mp4')
    os.makedirs(tmp_path / 'videos')
    with open(cut, 'wb') as f:
        f.write(data[:int(len(data) * 0.65)])
    decoded = len(opencv_frames(cut))
    assert 50 < decoded < 100  # the premise: part of the stream decodes
    # The last frame decoded lies in the cut-off packet; the ones before are intact.
    return cut, opencv_frames(full), decoded - 1


def test_faststart_video_is_intact(tmp_path):
    path = str(tmp_path / 'a.mp4')
    written = write_video(path, 20, fps=FPS, size=(48, 64))
    before = opencv_frames(path)
    with open(path, 'rb') as f:
        data = faststart(f.read())
    with open(path, 'wb') as f:
        f.write(data)
    np.testing.assert_array_equal(opencv_frames(path), before)
    assert VideoReader(path).read(list(range(20))).shape == written.shape


def test_truncated_mp4_keeps_the_frames_that_decode(truncated_mp4):
    path, full, usable = truncated_mp4
    with data_warnings() as logged:
        reader = VideoReader(path)
        VideoReader(path)  # opened again: known, no second warning
    assert reader.backend == 'opencv' and reader.num_frames == usable and reader.fps == FPS
    assert len(logged) == 1
    assert 'cut.mp4' in logged[0]
    assert f'only the first {usable} of its 100 frame(s) decode' in logged[0]
    frames = reader.read([0, usable // 2, usable - 1])
    np.testing.assert_array_equal(frames, full[[0, usable // 2, usable - 1]])
    with pytest.raises(VideoReadError, match='out of range'):
        reader.read([usable])


def test_truncated_mp4_with_its_index_at_the_end_is_unusable(tmp_path):
    path = str(tmp_path / 'cut.mp4')
    write_video(str(tmp_path / 'full.mp4'), 30, fps=FPS, size=(48, 64))
    data = open(tmp_path / 'full.mp4', 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * 0.65)])  # the moov box is gone with the tail
    with pytest.raises(VideoReadError, match='cut.mp4.*OpenCV cannot decode it either'):
        VideoReader(path)


def test_clip_sampler_sees_the_decodable_length(truncated_mp4):
    path, full, usable = truncated_mp4
    # Test mode ('center' window): chosen at build time from the decodable length.
    with data_warnings(match='cut.mp4.*truncated'):
        ds = VideoFolderDataset(path.rsplit('/', 1)[0], clip_len=10, time_between_frames=TBF,
                                clip_start='center', test_mode=True,
                                pipeline=[dict(type='LoadVideoClip'),
                                          dict(type='PackVideoInputs')])
    info = ds.get_data_info(0)
    assert info['num_frames'] == usable
    start = (usable - 10) // 2
    assert info['frame_indices'] == list(range(start, start + 10))
    sample = ds[0]
    np.testing.assert_array_equal(sample['inputs'].permute(0, 2, 3, 1).numpy(),
                                  full[start:start + 10])
    # Training (random start at fetch time): every window lies in the decodable part.
    loader = LoadVideoClip()
    sampler = ClipSampler(clip_len=10, time_between_frames=TBF, clip_start='random')
    np.random.seed(0)
    last = []
    for _ in range(20):
        out = loader(dict(video_path=path, clip_sampler=sampler))
        assert out is not None and out['num_frames'] == usable
        last.append(out['frame_indices'][-1])
    assert max(last) <= usable - 1 and max(last) > 80 * usable // 100


def test_truncation_found_while_reading_chooses_the_window_again(tmp_path, monkeypatch):
    # decord opens this AVI (and counts the frames it finds) but fails to decode 48 px
    # wide frames; the OpenCV fallback then finds the stream ends before the window.
    full = str(tmp_path / 'full.avi')
    write_video(full, 100, fps=FPS, size=(32, 48))
    data = open(full, 'rb').read()
    path = str(tmp_path / 'cut.avi')
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * 0.6)])
    decoded = len(opencv_frames(path))
    reader = VideoReader(path)
    assert reader.backend == 'decord' and reader.num_frames > decoded - 1
    claimed = reader.num_frames
    with data_warnings(match='cut.avi.*truncated'):
        with pytest.raises(VideoTruncatedError) as info:
            reader.read([claimed - 1])
    assert info.value.num_frames == reader.num_frames == decoded - 1
    assert VideoReader(path).num_frames == decoded - 1  # remembered for later opens
    # LoadVideoClip: a window at the end of the claimed length is chosen again.
    monkeypatch.setattr('ebtvision.datasets.video_reader._decodable_frames', {})
    sampler = ClipSampler(clip_len=4, time_between_frames=TBF, clip_start='first',
                          time_range=(0.95, 1.0))
    out = LoadVideoClip()(dict(video_path=path, clip_sampler=sampler))
    usable = decoded - 1
    lo = int(np.floor(0.95 * usable + 0.5))
    assert out['num_frames'] == usable and out['frame_indices'][0] == lo
    assert out['frame_indices'][-1] <= usable - 1
    np.testing.assert_array_equal(out['frames'],
                                  opencv_frames(full)[out['frame_indices']])
    # Fixed indices past the decodable end cannot move: the clip is skipped.
    monkeypatch.setattr('ebtvision.datasets.video_reader._decodable_frames', {})
    with data_warnings(match='Skipping video.*cut.avi'):
        assert LoadVideoClip()(dict(video_path=path, frame_indices=[claimed - 1])) is None
