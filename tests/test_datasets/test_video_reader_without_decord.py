"""Without decord (no wheels for aarch64 or Apple Silicon, where the [video] extra leaves it
out) videos are read with OpenCV: the same frames, one warning per process."""
import sys

import numpy as np
import pytest

from conftest import data_warnings, write_video
from ebtvision.datasets import VideoReader, skip_report


@pytest.fixture
def no_decord(monkeypatch):
    monkeypatch.setitem(sys.modules, 'decord', None)  # what an absent package looks like
    monkeypatch.setattr(skip_report, '_warned', set())  # the warning is once per process


@pytest.mark.parametrize('ext', ['.mp4', '.avi'])
def test_videos_read_with_opencv_without_decord(tmp_path, no_decord, ext):
    path = str(tmp_path / f'clip{ext}')
    written = write_video(path, 12, fps=25.0, size=(32, 48))
    with data_warnings(match='^decord is not installed: videos are read with OpenCV') as logged:
        reader = VideoReader(path)
        frames = reader.read([0, 5, 11, 5])
        small = VideoReader(str(path), width=24, height=16).read([3])
    assert (reader.backend, reader.num_frames, reader.fps) == ('opencv', 12, 25.0)
    assert frames.shape == (4, 32, 48, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[1], frames[3])
    # Lossy codecs: close to what was written (a wrong frame differs by far more).
    assert np.abs(frames.astype(int) - written[[0, 5, 11, 5]]).mean() < 6
    assert small.shape == (1, 16, 24, 3)  # the decode size decord would give
    # One warning for the process; no per-file "decord cannot open it".
    assert len(logged) == 1, logged


def test_opencv_frames_equal_decords(tmp_path, monkeypatch):
    pytest.importorskip('decord')
    path = str(tmp_path / 'clip.mp4')
    write_video(path, 12, fps=25.0, size=(32, 48))
    with_decord = VideoReader(path)
    assert with_decord.backend == 'decord'
    expected = with_decord.read([0, 6, 11])
    monkeypatch.setitem(sys.modules, 'decord', None)
    monkeypatch.setattr(skip_report, '_warned', set())
    without = VideoReader(path)
    assert without.backend == 'opencv' and without.num_frames == with_decord.num_frames
    assert np.array_equal(without.read([0, 6, 11]), expected)
