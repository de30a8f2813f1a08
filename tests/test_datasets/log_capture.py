"""Capture the warnings the data loaders log through MMEngine's logger (for tests)."""
import contextlib
import itertools
import logging
import re
from typing import Iterator, List, Optional

from mmengine.logging import MMLogger

_names = itertools.count()


class _ListHandler(logging.Handler):

    def __init__(self, records: List[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@contextlib.contextmanager
def data_warnings(match: Optional[str] = None) -> Iterator[List[str]]:
    """Collect the WARNING records logged with ``logger='current'`` inside the block.

    A fresh MMLogger becomes the current instance, so ``print_log(logger='current')``
    reaches it. Its handler keeps every record (MMLogger's own handlers drop repeated
    warnings), so tests can count them.

    Args:
        match: If given, like ``pytest.warns(match=...)``: one message must match
            this regular expression.

    Yields:
        The messages, appended as they are logged.
    """
    logger = MMLogger.get_instance(f'data_log_{next(_names)}', log_level='INFO')
    records: List[str] = []
    handler = _ListHandler(records)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
    if match is not None:
        assert any(re.search(match, r) for r in records), \
            f'no data warning matches {match!r}; logged: {records}'
