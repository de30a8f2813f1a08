"""Something-Something V2 in its official layout, as clips for next-frame prediction."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional

from ebtvision.registry import DATASETS
from .skip_report import log_data_warning
from .video_clips import BaseVideoClipDataset, _listing

#: Accepted ``split`` names and the annotation file each one reads.
SSV2_SPLITS = {'train': 'train', 'validation': 'validation', 'val': 'validation',
               'test': 'test'}


def _load_json(path: str, what: str):
    if not osp.isfile(path):
        raise FileNotFoundError(f'SSv2 {what} {path!r} not found.')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'SSv2 {what} {path!r} is not valid JSON: {err}') from err


def template_to_class_name(template: str) -> str:
    """``'Putting [something] on [something]'`` -> ``'Putting something on something'``.

    This is how ``labels.json`` names the 174 classes.
    """
    return template.replace('[', '').replace(']', '')


@DATASETS.register_module()
class SSv2Dataset(BaseVideoClipDataset):
    """Something-Something V2 videos (official layout), one clip per video.

    Layout::

        data_root/videos/<id>.webm
        data_root/labels/train.json        # [{"id", "label", "template", "placeholders"}]
        data_root/labels/validation.json
        data_root/labels/test.json         # entries may have only "id"
        data_root/labels/labels.json       # optional: {"<template without []>": "<index>"}

    Each data info has ``video_path``, ``video_id`` (the entry's ``id``) and, when
    annotated, ``template`` (as in the file, with brackets), ``caption`` (the
    entry's ``label`` text, objects filled in) and ``label`` (int class index, only
    when ``labels.json`` exists).

    Listed videos whose file is missing are dropped with one warning giving their
    count (and a few ids). Clip options (default ``clip_start``: ``'random'`` in
    training, ``'first'`` in test mode), probing and unusable videos: see
    :class:`~ebtvision.datasets.video_clips.BaseVideoClipDataset`.

    Args:
        data_root: SSv2 root folder.
        split: ``'train'``, ``'validation'`` (or ``'val'``) or ``'test'``.
        video_dir: Video folder, relative to ``data_root``.
        ann_dir: Annotation folder, relative to ``data_root``.
        video_ext: Extension of the video files.
        label_map: File (in ``ann_dir``) mapping class names to indices; ``None``
            disables integer labels. Used only if it exists.
        **kwargs: Clip options and ``BaseDataset`` arguments, see
            :class:`~ebtvision.datasets.video_clips.BaseVideoClipDataset`.

    Raises:
        FileNotFoundError: The annotation file is missing, or no listed video exists.
        ValueError: Malformed JSON, an entry without ``id``, a template missing from
            ``labels.json``, or an unknown split.
    """

    METAINFO: dict = dict(task='next_frame', dataset_type='ssv2')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 video_dir: str = 'videos',
                 ann_dir: str = 'labels',
                 video_ext: str = '.webm',
                 label_map: Optional[str] = 'labels.json',
                 **kwargs) -> None:
        if split not in SSV2_SPLITS:
            raise ValueError(f'SSv2 split must be one of {sorted(SSV2_SPLITS)}, got {split!r}')
        self.split = SSV2_SPLITS[split]
        self.video_dir = video_dir
        self.ann_dir = ann_dir
        self.video_ext = video_ext if video_ext.startswith('.') else '.' + video_ext
        self.label_map = label_map
        self.num_missing = 0
        super().__init__(data_root=data_root, **kwargs)

    def _layout_hint(self) -> str:
        return (f'Expected the official layout under {self.data_root!r}: '
                f'{self.video_dir}/<id>{self.video_ext} and {self.ann_dir}/train.json, '
                f'validation.json, test.json (and labels.json); or set data_root.')

    def _load_label_map(self) -> Optional[Dict[str, int]]:
        if self.label_map is None:
            return None
        path = osp.join(self.data_root, self.ann_dir, self.label_map)
        if not osp.isfile(path):
            return None
        raw = _load_json(path, 'class index file')
        if not isinstance(raw, dict):
            raise ValueError(f'SSv2 class index file {path!r} must map class names to '
                             f'indices, got a {type(raw).__name__}')
        try:
            return {str(name): int(index) for name, index in raw.items()}
        except (TypeError, ValueError) as err:
            raise ValueError(f'SSv2 class index file {path!r} has a non-integer index: '
                             f'{err}') from err

    def list_videos(self) -> List[dict]:
        """Parse ``<ann_dir>/<split>.json`` into data infos of existing videos."""
        ann_path = osp.join(self.data_root, self.ann_dir, f'{self.split}.json')
        if not osp.isfile(ann_path):
            raise FileNotFoundError(f'SSv2 annotation file {ann_path!r} not found. '
                                    f'{self._layout_hint()}')
        entries = _load_json(ann_path, 'annotation file')
        if not isinstance(entries, list):
            raise ValueError(f'SSv2 annotation file {ann_path!r} must hold a JSON list of '
                             f'entries, got a {type(entries).__name__}')
        label_map = self._load_label_map()
        video_root = osp.join(self.data_root, self.video_dir)
        # One directory listing instead of a stat per video (168k files on a network FS).
        present = set(os.listdir(video_root)) if osp.isdir(video_root) else set()

        videos, missing = [], []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or 'id' not in entry:
                raise ValueError(f'SSv2 annotation file {ann_path!r}: entry {i} has no "id" '
                                 f'(got {str(entry)[:100]})')
            video_id = str(entry['id'])
            name = video_id + self.video_ext
            if name not in present:
                missing.append(video_id)
                continue
            info = dict(video_path=osp.join(video_root, name), video_id=video_id)
            if 'template' in entry:
                info['template'] = str(entry['template'])
                if label_map is not None:
                    class_name = template_to_class_name(info['template'])
                    if class_name not in label_map:
                        raise ValueError(
                            f'SSv2 entry {video_id!r} of {ann_path!r} has template '
                            f'{info["template"]!r}, whose class {class_name!r} is not in '
                            f'{osp.join(self.data_root, self.ann_dir, self.label_map)!r}')
                    info['label'] = label_map[class_name]
            if 'label' in entry:
                info['caption'] = str(entry['label'])
            videos.append(info)

        self.num_missing = len(missing)
        if not videos:
            raise FileNotFoundError(
                f'None of the {len(entries)} video(s) listed in {ann_path!r} exists in '
                f'{video_root!r} (e.g. {_listing(missing)}). {self._layout_hint()}')
        if missing:
            log_data_warning(
                f'{len(missing)} of {len(entries)} video(s) listed in {ann_path!r} are missing '
                f'from {video_root!r} and were dropped (e.g. ids {_listing(missing)}).')
        return videos
