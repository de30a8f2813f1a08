"""A dataset of all images under a folder, e.g. ``data/coco/train2014``."""
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset

from ebtvision.registry import DATASETS, TRANSFORMS
from .file_listing import list_dataset_files, resolve_data_root
from .skip_report import SkipTrackingMixin, log_data_warning
from .transforms.loading import LoadImageFromFile, find_image_loader, link_reduced_decode

#: Default accepted file extensions (compared case-insensitively).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff')

# Shown in error messages so the user knows where to put the files.
_MAX_LISTED = 10


def drop_unreadable(infos: List[dict],
                    indices: Optional[Union[int, Sequence[int]]] = None,
                    where: str = '',
                    loader: Optional[LoadImageFromFile] = None) -> Tuple[List[dict], List[str]]:
    """Decode each ``info['img_path']`` once, in order, and keep the readable infos.

    The test-mode policy shared by the image datasets: ``BaseDataset`` raises on a
    ``None`` sample in test mode, so unreadable files are dropped at build time.
    Each one is warned about (once per file) and counted in
    ``LoadImageFromFile.num_skipped``, then one summary warning names them; all go
    to MMEngine's logger, so they are in the work dir's log.

    Args:
        infos: Data infos with ``img_path`` (other keys, e.g. ``gt_label``, are kept).
        indices: The dataset's ``indices`` argument. ``BaseDataset`` keeps the first
            (last, if negative) N entries for an int, so only files up to the N-th
            readable one from that end are decoded (``indices=2000`` on 40k images
            decodes about 2k). Other values decode everything.
        where: Folder named in the summary warning.
        loader: The pipeline's loader, so files are checked the way they will be
            decoded (e.g. a huge JPEG at reduced size); a default one if ``None``.

    Returns:
        ``(kept infos in input order, skipped paths)``.
    """
    limit = abs(indices) if isinstance(indices, int) else None
    from_end = isinstance(indices, int) and indices < 0
    todo = infos[::-1] if from_end else infos
    loader = loader or LoadImageFromFile()
    # OpenCV releases the GIL while decoding, so threads give a real speed-up.
    workers = min(8, os.cpu_count() or 1)
    chunk = 16 * workers
    kept: List[dict] = []
    skipped: List[str] = []
    checked = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(todo), chunk):
            if limit is not None and len(kept) >= limit:
                break
            batch = todo[start:start + chunk]
            reasons = list(pool.map(lambda info: loader.load(info['img_path'])[1], batch))
            for info, reason in zip(batch, reasons):
                if limit is not None and len(kept) >= limit:
                    break
                checked += 1
                if reason:
                    skipped.append(info['img_path'])
                    LoadImageFromFile.report_unreadable(info['img_path'], reason)
                else:
                    kept.append(info)
    if skipped:
        log_data_warning(
            f'Excluded {len(skipped)} unreadable image(s) of {checked} checked under '
            f'{where!r}: {skipped[:_MAX_LISTED]}' + (' ...' if len(skipped) > _MAX_LISTED
                                                    else ''))
    return (kept[::-1] if from_end else kept), skipped


@DATASETS.register_module()
class ImageFolderDataset(SkipTrackingMixin, BaseDataset):
    """All images under ``data_root`` (recursively), or the ones in ``file_list``.

    Each data info is ``{'img_path': <absolute path>}`` (``BaseDataset`` adds
    ``sample_idx``); a pipeline such as ``LoadImageFromFile -> RandomCrop ->
    NormalizeToSymmetric -> PackDenoiseInputs`` turns it into a training sample.

    Scanning is recursive and sorted by relative path, so the order is deterministic
    across machines; hidden files and folders (names starting with ``.``, e.g. macOS
    ``._x.jpg`` resource forks) are ignored and symlinked folders are followed. A
    COCO image folder (``data/coco/train2014/*.jpg``) works as is. A ``Resize``
    right after ``LoadImageFromFile`` lets huge JPEGs decode at reduced size (see
    :class:`LoadImageFromFile`; :func:`link_reduced_decode` is applied here).

    ``data_root='skimage://'`` means the folder of photos bundled with scikit-image
    (see :func:`skimage_data_dir`); combine it with ``file_list`` to choose photos,
    e.g. ``file_list=['astronaut.png', 'coffee.png']``.

    Unreadable images:

    * Training (``check_readable=False``, the default when ``test_mode=False``): not
      checked at start-up (fast on 80k images). ``LoadImageFromFile`` warns once per
      file, counts (``LoadImageFromFile.num_skipped``) and returns ``None``, and
      ``__getitem__`` then draws another random index (up to ``max_refetch`` times)
      and lists the skipped files in the returned sample's metainfo
      (``skipped_files``), which ``DataSkipHook`` counts per epoch.
    * Test (``check_readable=True``, the default when ``test_mode=True``):
      ``BaseDataset`` raises on ``None`` in test mode, so every file is decoded once
      at load time and unreadable ones are excluded with a warning naming them;
      they are counted in ``LoadImageFromFile.num_skipped`` and listed in
      :attr:`skipped_files`. With an int ``indices`` (e.g. ``indices=2000``) only
      files up to the N-th readable one are decoded, and the subset is the first N
      *readable* images; a sequence ``indices`` refers to positions after unreadable
      files were dropped.

    Args:
        data_root: Image folder, or ``'skimage://'`` (see above).
        pipeline: Transforms (config dicts or callables).
        file_list: Relative paths (to ``data_root``) of the images to use, in that
            order, or the path of a text file with one relative path per line (blank
            lines and lines starting with ``#`` are ignored; a relative path to the
            text file is tried from the working directory, then from ``data_root``).
            Listed files need not match ``extensions``.
        extensions: Accepted extensions when scanning, case-insensitive.
        test_mode: Evaluation dataset (no refetch on ``None``).
        check_readable: Decode every file at load time and drop unreadable ones.
            ``None`` means ``test_mode``.
        **kwargs: Passed to ``mmengine.dataset.BaseDataset`` (``serialize_data``,
            ``lazy_init``, ``max_refetch``, ``indices``, ``metainfo``, ...).

    Raises:
        FileNotFoundError: ``data_root`` is missing or holds no image, a
            ``file_list`` entry does not exist, or no file is readable.
    """

    METAINFO: dict = dict(task='denoise', dataset_type='image_folder')

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 file_list: Optional[Union[str, Sequence[str]]] = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 test_mode: bool = False,
                 check_readable: Optional[bool] = None,
                 **kwargs) -> None:
        self.data_root_arg = data_root
        self.file_list = file_list if isinstance(file_list, (str, type(None))) else list(file_list)
        self.extensions = tuple(
            (e if e.startswith('.') else '.' + e).lower() for e in extensions)
        self.check_readable = test_mode if check_readable is None else check_readable
        self.skipped_files: List[str] = []
        # Build dict transforms from ebtvision's registry so that our transform names
        # resolve even when no default scope is set (mmengine's Compose would use the
        # root registry).
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        # A Resize right after the loader lets huge JPEGs decode at reduced size.
        link_reduced_decode(built)
        self.loader = find_image_loader(built)
        super().__init__(
            data_root=resolve_data_root(data_root),
            pipeline=built,
            test_mode=test_mode,
            **kwargs)

    def _where_msg(self) -> str:
        return (f'Put the images there (any sub-folder depth, e.g. '
                f'data/coco/train2014/*.jpg) or set data_root to where they are '
                f'(data_root={self.data_root_arg!r}). Accepted extensions '
                f'(case-insensitive): {", ".join(self.extensions)}.')

    def load_data_list(self) -> List[dict]:
        """Scan the folder (or read ``file_list``) into ``[{'img_path': ...}]``.

        Returns:
            One dict per image with its absolute ``img_path``.

        Raises:
            FileNotFoundError: See the class docstring.
        """
        root = self.data_root
        rel_paths = list_dataset_files(root, self.file_list, self.extensions, 'images',
                                       self._where_msg())

        infos = [dict(img_path=osp.normpath(osp.join(root, p))) for p in rel_paths]
        if self.check_readable:
            infos, skipped = drop_unreadable(infos, self._indices, root, self.loader)
            self.skipped_files.extend(skipped)
            if not infos and skipped:
                raise FileNotFoundError(
                    f'None of the {len(skipped)} image(s) in {root!r} '
                    f'can be decoded. {self._where_msg()}')
        return infos
