"""ImageNet-1k (or any wnid-folder classification set) for the linear probe.

Layouts (the common OpenMMLab one)::

    data/imagenet/train/<wnid>/*.JPEG
    data/imagenet/val/<wnid>/*.JPEG                  (class folders), or
    data/imagenet/val/*.JPEG + meta/val.txt          (flat, '<file name> <class index>')
    data/imagenet/meta/classes.txt                   (optional, one wnid per line)
"""
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ebtvision.registry import DATASETS, TRANSFORMS
from .file_listing import scan_files
from .image_folder import IMG_EXTENSIONS, drop_unreadable, resolve_data_root
from .skip_report import SkipTrackingMixin
from .transforms.loading import find_image_loader, link_reduced_decode

_SPLITS = ('train', 'val')
# How many offending entries an error message names.
_MAX_LISTED = 5


def _list_class_folders(split_dir: str) -> List[str]:
    """Sorted names of the non-hidden sub-folders of ``split_dir``."""
    return sorted(d for d in os.listdir(split_dir)
                  if not d.startswith('.') and osp.isdir(osp.join(split_dir, d)))


def _read_classes_file(path: str) -> List[str]:
    """Wnids from a text file: the first token of each line (``#`` comments, blanks)."""
    with open(path, encoding='utf-8') as f:
        lines = [line.strip() for line in f]
    return [line.split()[0] for line in lines if line and not line.startswith('#')]


def _read_ann_file(path: str) -> List[Tuple[str, int]]:
    """``(relative path, class index)`` pairs from ``<file name> <index>`` lines.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A line is not ``<file name> <int>`` (names the line number).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Annotation file {path!r} not found. A flat val folder needs lines '
            f'"<file name> <class index>" (e.g. meta/val.txt of the OpenMMLab layout), '
            f'or put the val images in class folders val/<wnid>/.')
    pairs = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            # rsplit: file names may contain spaces, the label never does.
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                raise ValueError(f'{path}:{lineno}: expected "<file name> <class index>", '
                                 f'got {line!r}')
            pairs.append((parts[0], int(parts[1])))
    return pairs


@DATASETS.register_module()
class ImageNetDataset(SkipTrackingMixin, BaseDataset):
    """ImageNet-style classification folders; data infos ``{'img_path', 'gt_label'}``.

    Class indices are stable: the position of the wnid in the class list, which is
    ``classes`` if given, else ``data_root/meta/classes.txt`` if present, else the
    sorted class folders of ``data_root/train`` (else, for a val-only tree with class
    folders, the sorted val folders). ``metainfo['classes']`` is that wnid list.

    * ``split='train'``: ``train/<wnid>/*`` (extensions case-insensitive, recursive
      inside each class folder, sorted).
    * ``split='val'``: class folders ``val/<wnid>/*``, or flat ``val/*`` labelled by
      ``ann_file`` (default ``meta/val.txt``). An explicit ``ann_file`` is used for
      either split, with file names relative to the split folder.

    Unreadable images follow :class:`ImageFolderDataset`: in training
    ``LoadImageFromFile`` warns once per file, counts and returns ``None`` so another
    sample is drawn (the skipped files are listed in its metainfo); with
    ``check_readable`` (default: ``test_mode``) every file is decoded at build time
    and unreadable ones are dropped with one warning and listed in
    :attr:`skipped_files`. A ``Resize`` right after the loader lets huge JPEGs decode
    at reduced size (see ``LoadImageFromFile``).

    Args:
        data_root: Dataset root holding ``train/``, ``val/`` and optionally ``meta/``.
        split: ``'train'`` or ``'val'``.
        ann_file: ``<file name> <class index>`` list, relative to ``data_root``
            unless absolute. None: ``meta/val.txt`` for a flat val folder.
        pipeline: Transforms (config dicts or callables).
        classes: Wnids in index order (sequence, or path of a one-per-line file);
            overrides ``meta/classes.txt`` and the train folders.
        extensions: Accepted image extensions when scanning, case-insensitive.
        test_mode: Evaluation dataset (no refetch on ``None``).
        check_readable: Decode every file at build time and drop unreadable ones.
            ``None`` means ``test_mode``.
        **kwargs: Passed to ``mmengine.dataset.BaseDataset`` (``indices``,
            ``lazy_init``, ``serialize_data``, ``max_refetch``, ``metainfo``, ...).

    Raises:
        FileNotFoundError: Missing split folder or ann file, empty split, listed
            files missing, or no readable image.
        ValueError: Unknown split, a val class folder that is not a known class,
            a label out of range, a malformed ann line, duplicate classes.
    """

    METAINFO: dict = dict(task='classify', dataset_type='imagenet')

    def __init__(self,
                 data_root: str = 'data/imagenet',
                 split: str = 'train',
                 ann_file: Optional[str] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 classes: Optional[Union[str, Sequence[str]]] = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 test_mode: bool = False,
                 check_readable: Optional[bool] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if split not in _SPLITS:
            raise ValueError(f'split must be one of {_SPLITS}, got {split!r}')
        self.split = split
        self.data_root_arg = data_root
        self.extensions = tuple(
            (e if e.startswith('.') else '.' + e).lower() for e in extensions)
        self.check_readable = test_mode if check_readable is None else check_readable
        self.skipped_files: List[str] = []
        root = resolve_data_root(data_root)
        self.split_dir = osp.join(root, split)
        if not osp.isdir(self.split_dir):
            raise FileNotFoundError(
                f'ImageNet {split} folder {self.split_dir!r} does not exist. '
                f'{self._where_msg()}')
        # The class list is cheap (folder names only), so it is known at construction
        # even with lazy_init, and metainfo['classes'] is always there.
        class_list = self._resolve_classes(root, classes)
        metainfo = dict(metainfo or {}, classes=tuple(class_list))
        # Same as ImageFolderDataset: build dict transforms from our registry so our
        # names resolve without a default scope.
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        link_reduced_decode(built)
        self.loader = find_image_loader(built)
        super().__init__(
            ann_file=ann_file or '',
            metainfo=metainfo,
            data_root=root,
            pipeline=built,
            test_mode=test_mode,
            **kwargs)

    def _where_msg(self) -> str:
        return (f'Expected data_root={self.data_root_arg!r} to hold train/<wnid>/*.JPEG and '
                f'val/<wnid>/*.JPEG (or flat val/*.JPEG with meta/val.txt); set data_root '
                f'to where ImageNet is.')

    def _resolve_classes(self, root: str,
                         classes: Optional[Union[str, Sequence[str]]]) -> List[str]:
        """The wnid list that defines class indices (see the class docstring)."""
        meta_classes = osp.join(root, 'meta', 'classes.txt')
        train_dir = osp.join(root, 'train')
        if isinstance(classes, str):
            path = classes if osp.isabs(classes) or osp.isfile(classes) else osp.join(
                root, classes)
            if not osp.isfile(path):
                raise FileNotFoundError(f'classes file {classes!r} not found (looked in the '
                                        f'working directory and in {root!r}).')
            found, source = _read_classes_file(path), path
        elif classes is not None:
            found, source = [str(c) for c in classes], 'the classes argument'
        elif osp.isfile(meta_classes):
            found, source = _read_classes_file(meta_classes), meta_classes
        elif osp.isdir(train_dir):
            found, source = _list_class_folders(train_dir), f'class folders of {train_dir!r}'
        else:
            # Val-only tree: only class folders can name the classes.
            found, source = _list_class_folders(self.split_dir), (
                f'class folders of {self.split_dir!r}')
            if not found:
                raise FileNotFoundError(
                    f'Cannot tell the class list for the flat folder {self.split_dir!r}: '
                    f'there is no {train_dir!r} and no {meta_classes!r}. Add '
                    f'meta/classes.txt (one wnid per line, in class-index order) or pass '
                    f'classes=[...].')
        if not found:
            raise FileNotFoundError(f'No classes found in {source}. {self._where_msg()}')
        dup = sorted({c for c in found if found.count(c) > 1})
        if dup:
            raise ValueError(f'Duplicate classes in {source}: {dup[:_MAX_LISTED]}')
        return found

    def _from_class_folders(self, class_to_idx: Dict[str, int]) -> List[Tuple[str, int]]:
        """``(relative path, label)`` for ``split_dir/<wnid>/...`` images."""
        folders = _list_class_folders(self.split_dir)
        unknown = [d for d in folders if d not in class_to_idx]
        if unknown:
            raise ValueError(
                f'{len(unknown)} class folder(s) of {self.split_dir!r} are not among the '
                f'{len(class_to_idx)} known classes (train folders / classes.txt): '
                f'{unknown[:_MAX_LISTED]}. Train and val must use the same wnids.')
        items = []
        empty = []
        for wnid in folders:
            files = scan_files(osp.join(self.split_dir, wnid), self.extensions)
            if not files:
                empty.append(wnid)
            items += [(osp.join(wnid, f), class_to_idx[wnid]) for f in files]
        if empty and items:
            print_log(f'{len(empty)} class folder(s) of {self.split_dir!r} hold no image: '
                      f'{empty[:_MAX_LISTED]}', logger='current', level=30)
        return items

    def _from_ann_file(self, ann_file: str, num_classes: int) -> List[Tuple[str, int]]:
        """``(relative path, label)`` from an annotation list, checked."""
        pairs = _read_ann_file(ann_file)
        bad = [(p, i) for p, i in pairs if not 0 <= i < num_classes]
        if bad:
            raise ValueError(
                f'{len(bad)} label(s) in {ann_file!r} are outside [0, {num_classes}) '
                f'({num_classes} classes): {bad[:_MAX_LISTED]}')
        missing = [p for p, _ in pairs if not osp.isfile(osp.join(self.split_dir, p))]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of {len(pairs)} file(s) listed in {ann_file!r} are missing '
                f'under {self.split_dir!r}: {missing[:_MAX_LISTED]}'
                + (' ...' if len(missing) > _MAX_LISTED else ''))
        return pairs

    def load_data_list(self) -> List[dict]:
        """List the split into ``[{'img_path': <absolute>, 'gt_label': int}]``.

        Raises:
            FileNotFoundError, ValueError: See the class docstring.
        """
        classes = list(self.metainfo['classes'])
        class_to_idx = {c: i for i, c in enumerate(classes)}
        if self.ann_file:
            items = self._from_ann_file(self.ann_file, len(classes))
        elif _list_class_folders(self.split_dir):
            items = self._from_class_folders(class_to_idx)
        elif self.split == 'val':
            items = self._from_ann_file(osp.join(self.data_root, 'meta', 'val.txt'),
                                        len(classes))
        else:
            items = []
        if not items:
            raise FileNotFoundError(
                f'No images found in {self.split_dir!r} (extensions, case-insensitive: '
                f'{", ".join(self.extensions)}). {self._where_msg()}')

        infos = [dict(img_path=osp.normpath(osp.join(self.split_dir, p)), gt_label=label)
                 for p, label in items]
        if self.check_readable:
            infos, skipped = drop_unreadable(infos, self._indices, self.split_dir,
                                             self.loader)
            self.skipped_files.extend(skipped)
            if not infos:
                raise FileNotFoundError(
                    f'None of the {len(skipped)} image(s) in {self.split_dir!r} can be '
                    f'decoded. {self._where_msg()}')
        return infos
