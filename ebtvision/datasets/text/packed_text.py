"""Plain text cut into fixed-length token sequences (language-model training data)."""
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset

from ebtvision.registry import DATASETS
from ..transforms.text import PackTextInputs
from ..file_listing import PYDOC_PREFIX, scan_files
from .tokenizers import build_tokenizer
TEXT_EXTENSIONS = ('.txt', '.md', '.rst', '.text')


def pydoc_text() -> str:
    """The help texts of Python's ``pydoc_data.topics`` (about 465k characters), sorted."""
    from pydoc_data.topics import topics
    return '\n\n'.join(topics[name] for name in sorted(topics))


@DATASETS.register_module()
class PackedTextDataset(BaseDataset):
    """The concatenated text of files (or ``pydoc://``) in windows of ``seq_len + 1`` tokens.

    Windows do not overlap. ``split_range=(start, end)`` keeps the windows whose start lies
    in that fraction of the token stream, so train and validation sets never share text.

    Args:
        data_root: Folder of ``.txt`` / ``.md`` / ``.rst`` files, a single file, or
            ``'pydoc://'``.
        seq_len: Tokens the model sees per sample.
        split_range: Fraction of the stream used, e.g. ``(0, 0.9)`` / ``(0.9, 1)``.
        tokenizer: ``None`` (bytes) or a tokenizer config (see ``build_tokenizer``).
        file_list: Optional subset of files (relative to ``data_root``).
        pipeline: Defaults to ``[PackTextInputs]``.
    """

    METAINFO = dict(task='text')

    def __init__(self, data_root: str = PYDOC_PREFIX, seq_len: int = 128,
                 split_range: Sequence[float] = (0.0, 1.0), tokenizer: Optional[dict] = None,
                 file_list: Optional[Sequence[str]] = None, pipeline: Optional[list] = None,
                 **kwargs) -> None:
        start, end = split_range
        if not 0 <= start < end <= 1:
            raise ValueError(f'split_range must satisfy 0 <= start < end <= 1, got {split_range}')
        self.seq_len, self.split_range = int(seq_len), (float(start), float(end))
        self.tokenizer = build_tokenizer(tokenizer)
        self.file_list = file_list
        self.source = data_root
        super().__init__(data_root='' if data_root == PYDOC_PREFIX else data_root,
                         pipeline=pipeline or [PackTextInputs()],
                         serialize_data=False, **kwargs)

    def read_text(self) -> str:
        if self.source == PYDOC_PREFIX:
            return pydoc_text()
        root = self.source
        if osp.isfile(root):
            paths = [root]
        elif osp.isdir(root):
            names = self.file_list or scan_files(root, TEXT_EXTENSIONS)
            paths = [osp.join(root, name) for name in names]
        else:
            raise FileNotFoundError(f'text data_root {root} does not exist')
        if not paths:
            raise FileNotFoundError(f'no text files ({", ".join(TEXT_EXTENSIONS)}) in {root}')
        texts = []
        for path in sorted(paths):
            try:
                with open(path, encoding='utf-8') as file:
                    texts.append(file.read())
            except UnicodeDecodeError as error:
                raise ValueError(f'{path} is not UTF-8 text ({error})') from None
        return '\n\n'.join(texts)

    def load_data_list(self) -> List[dict]:
        tokens = self.tokenizer.encode(self.read_text())
        window = self.seq_len + 1
        first = int(self.split_range[0] * len(tokens))
        last = int(self.split_range[1] * len(tokens))
        samples = []
        for index, start in enumerate(range(first, last - window + 1, window)):
            samples.append(dict(tokens=tokens[start:start + window], seq_len=self.seq_len,
                                pad_id=self.tokenizer.pad_id, sample_idx=index))
        if not samples:
            raise ValueError(f'{self.source}: {last - first} tokens in split_range '
                             f'{self.split_range}, fewer than one window of {window}')
        return samples
