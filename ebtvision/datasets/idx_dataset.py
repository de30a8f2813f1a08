"""MNIST-style idx files (e.g. Fashion-MNIST from the Debian package) as a labelled set."""
import gzip
import os.path as osp
import struct
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset

from ebtvision.registry import DATASETS, TRANSFORMS
from .image_folder import resolve_data_root
from .transforms.loading import LoadImageFromFile

#: idx dtype codes (third magic byte); all multi-byte types are big-endian.
IDX_DTYPES = {
    0x08: np.dtype('u1'),
    0x09: np.dtype('i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}

FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                         'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
DIGIT_CLASSES = tuple(str(i) for i in range(10))

# idx file name prefix of each split (the MNIST naming).
_SPLIT_PREFIX = {'train': 'train', 'test': 't10k'}


def read_idx(path: str) -> np.ndarray:
    """Read an idx file (plain or gzip-compressed) into a native-endian array.

    Format: 2 zero bytes, a dtype code, the number of dims, then one big-endian
    uint32 per dim, then the data in row-major order.

    Args:
        path: The file; gzip is detected from its first bytes, not its name.

    Returns:
        Array of shape ``dims``; uint8 files stay uint8.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: Bad magic, unknown dtype, or a data size that does not match the
            header (truncated or trailing bytes); the message names the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'idx file {path!r} does not exist')
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] == b'\x1f\x8b':
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f'{path!r}: corrupt gzip data ({err})') from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f'{path!r} is not an idx file: bad magic {raw[:4].hex() or "(empty)"} '
                         f'(expected 0000<dtype><ndim>)')
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise ValueError(f'{path!r}: unknown idx dtype code 0x{code:02x} '
                         f'(known: {", ".join(f"0x{c:02x}" for c in IDX_DTYPES)})')
    if ndim == 0:
        raise ValueError(f'{path!r}: idx header has 0 dimensions')
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f'{path!r}: truncated idx header ({len(raw)} bytes, '
                         f'{ndim} dims need {header})')
    dims = struct.unpack(f'>{ndim}I', raw[4:header])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f'{path!r}: header says shape {dims} of {dtype.name} '
                         f'({expected} bytes) but the file holds {len(raw) - header} data bytes')
    arr = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    # astype copies into a writable, native-endian array (frombuffer's is read-only).
    return arr.reshape(dims).astype(dtype.newbyteorder('='))


def find_idx_file(root: str, prefix: str, kind: str) -> Optional[str]:
    """Path of ``<prefix>-<kind>-idx<n>-ubyte[.gz]`` in ``root`` (also ``.idx`` naming)."""
    ndim = 3 if kind == 'images' else 1
    for name in (f'{prefix}-{kind}-idx{ndim}-ubyte', f'{prefix}-{kind}.idx{ndim}-ubyte'):
        for ext in ('.gz', ''):
            path = osp.join(root, name + ext)
            if osp.isfile(path):
                return path
    return None


@DATASETS.register_module()
class IdxImageDataset(BaseDataset):
    """Images and labels from idx files (MNIST, Fashion-MNIST).

    Reads ``train-images-idx3-ubyte[.gz]`` / ``train-labels-idx1-ubyte[.gz]``
    (``t10k-...`` for ``split='test'``). All images stay in one uint8 array
    (60k x 28 x 28 is 47 MB, shared by forked dataloader workers); the dataset itself
    puts each sample's image into ``results['img']`` as float32 RGB (H, W, 3) in
    [0, 1] (gray repeated, like ``LoadImageFromFile``), with ``ori_shape`` and
    ``img_shape``, before the pipeline. So the pipeline starts *after* loading,
    e.g. ``Resize -> CenterCrop -> NormalizeToSymmetric -> PackClassifyInputs``.

    Data infos: ``img_path`` (``'<images file>#<index>'``, for messages and
    visualisation), ``gt_label`` (int), ``idx_index`` (row in the idx file).
    ``metainfo['classes']``: the Fashion-MNIST names when the folder name contains
    ``fashion``, else ``'0'``..``'9'`` (override with ``metainfo=dict(classes=...)``).

    Args:
        data_root: Folder with the four idx files. The default is where the Debian
            package ``dataset-fashion-mnist`` installs them.
        split: ``'train'`` or ``'test'``.
        pipeline: Transforms after loading (config dicts or callables).
        **kwargs: Passed to ``mmengine.dataset.BaseDataset`` (``indices``,
            ``test_mode``, ``metainfo``, ``lazy_init``, ...).

    Raises:
        FileNotFoundError: The folder or an idx file is missing.
        ValueError: Unknown split, a malformed idx file, image/label count mismatch,
            labels outside the class list, or ``LoadImageFromFile`` in the pipeline.
    """

    METAINFO: dict = dict(task='classify', dataset_type='idx')

    def __init__(self,
                 data_root: str = '/usr/share/datasets/fashion-mnist',
                 split: str = 'train',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if split not in _SPLIT_PREFIX:
            raise ValueError(f'split must be one of {tuple(_SPLIT_PREFIX)}, got {split!r}')
        self.split = split
        self.data_root_arg = data_root
        root = resolve_data_root(data_root)
        self.images_file, self.labels_file = self._find_files(root)
        self.images: Optional[np.ndarray] = None
        metainfo = dict(metainfo or {})
        if 'classes' not in metainfo:
            fashion = 'fashion' in osp.basename(osp.normpath(root)).lower()
            metainfo['classes'] = FASHION_MNIST_CLASSES if fashion else DIGIT_CLASSES
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        if any(isinstance(t, LoadImageFromFile) for t in built):
            raise ValueError('IdxImageDataset puts results["img"] itself; remove '
                             'LoadImageFromFile from its pipeline.')
        super().__init__(data_root=root, metainfo=metainfo, pipeline=built, **kwargs)

    def _find_files(self, root: str) -> Tuple[str, str]:
        """The images and labels files of the split, or a clear error."""
        hint = ('Install Fashion-MNIST with `apt-get install dataset-fashion-mnist` (files '
                'land in /usr/share/datasets/fashion-mnist), or set data_root= to a folder '
                'with the four idx files (train-images-idx3-ubyte[.gz], '
                'train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], '
                't10k-labels-idx1-ubyte[.gz]).')
        if not osp.isdir(root):
            raise FileNotFoundError(f'idx dataset folder {root!r} does not exist '
                                    f'(data_root={self.data_root_arg!r}). {hint}')
        prefix = _SPLIT_PREFIX[self.split]
        found = [find_idx_file(root, prefix, kind) for kind in ('images', 'labels')]
        if None in found:
            missing = [f'{prefix}-{k}-idx{n}-ubyte[.gz]'
                       for k, n, p in zip(('images', 'labels'), (3, 1), found) if p is None]
            raise FileNotFoundError(f'Missing {missing} in {root!r}. {hint}')
        return found[0], found[1]

    def load_data_list(self) -> List[dict]:
        """Read both idx files and return one small info dict per image.

        Raises:
            ValueError: See the class docstring.
        """
        images = read_idx(self.images_file)
        labels = read_idx(self.labels_file)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f'{self.images_file!r}: expected uint8 images (N, H, W), got '
                             f'{images.dtype} {images.shape}')
        if labels.ndim != 1:
            raise ValueError(f'{self.labels_file!r}: expected labels (N,), got {labels.shape}')
        if len(images) != len(labels):
            raise ValueError(f'{len(images)} images in {self.images_file!r} but '
                             f'{len(labels)} labels in {self.labels_file!r}')
        num_classes = len(self.metainfo['classes'])
        if len(labels) and not (0 <= labels.min() and labels.max() < num_classes):
            raise ValueError(f'{self.labels_file!r}: labels span [{labels.min()}, '
                             f'{labels.max()}] but there are {num_classes} classes')
        self.images = images
        return [dict(img_path=f'{self.images_file}#{i}', gt_label=int(label), idx_index=i)
                for i, label in enumerate(labels.tolist())]

    def prepare_data(self, idx: int) -> dict:
        """Attach the image as float32 RGB [0, 1] and run the pipeline."""
        results = self.get_data_info(idx)
        gray = self.images[results['idx_index']].astype(np.float32) / 255.0
        img = np.repeat(gray[:, :, None], 3, axis=2)
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        return self.pipeline(results)
