"""Tokenizers of the language branch: bytes by default (offline, any text), or a
``tokenizers`` JSON file from a local path."""
import os.path as osp
from typing import List, Sequence, Union

#: Special ids after the 256 byte values.
PAD_ID = 256
BOS_ID = 257


class ByteTokenizer:
    """UTF-8 bytes as tokens (ids 0-255) plus ``<pad>`` (256) and ``<bos>`` (257).

    Needs no vocabulary file and encodes any text losslessly; decoding replaces invalid
    UTF-8 (e.g. a cut multi-byte character) and drops special ids.
    """

    vocab_size = 258
    pad_id = PAD_ID
    bos_id = BOS_ID

    def encode(self, text: str) -> List[int]:
        return list(text.encode('utf-8'))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode('utf-8', errors='replace')

    def __repr__(self) -> str:
        return f'{type(self).__name__}(vocab_size={self.vocab_size})'


class FileTokenizer:
    """A Hugging Face ``tokenizers`` JSON file (e.g. a trained BPE), read from disk only.

    Args:
        path: The ``tokenizer.json`` file.
        pad_token: Token used for padding; it must be in the vocabulary.
    """

    def __init__(self, path: str, pad_token: str = '<pad>') -> None:
        path = osp.expanduser(path)
        if not osp.isfile(path):
            raise FileNotFoundError(f'tokenizer file {path} does not exist; give a local '
                                    "tokenizers JSON file or use the byte tokenizer (type='byte')")
        from ebtvision.utils.optional import require
        tokenizers = require('tokenizers', "FileTokenizer (tokenizer files; the byte tokenizer, "
                             "type='byte', works without it)")
        self.tokenizer = tokenizers.Tokenizer.from_file(path)
        self.vocab_size = self.tokenizer.get_vocab_size()
        pad = self.tokenizer.token_to_id(pad_token)
        if pad is None:
            raise ValueError(f'{path}: pad token {pad_token!r} is not in the vocabulary')
        self.pad_id = pad
        self.bos_id = pad

    def encode(self, text: str) -> List[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids])


def build_tokenizer(cfg: Union[None, dict, ByteTokenizer, FileTokenizer] = None):
    """``None`` / ``dict(type='byte')`` -> bytes; ``dict(type='file', path=...)`` -> file."""
    if cfg is None or isinstance(cfg, (ByteTokenizer, FileTokenizer)):
        return cfg or ByteTokenizer()
    cfg = dict(cfg)
    kind = cfg.pop('type', 'byte')
    if kind == 'byte':
        return ByteTokenizer()
    if kind == 'file':
        return FileTokenizer(**cfg)
    raise ValueError(f"tokenizer type must be 'byte' or 'file', got {kind!r}")
