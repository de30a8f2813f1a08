from .checkpoint import (AtomicLocalBackend, atomic_write, find_resumable_checkpoint,
                         history_buffers_to_plain, load_checkpoint_weights_only,
                         plain_to_history_buffers)
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403

__all__ = [
    'AtomicLocalBackend', 'atomic_write', 'find_resumable_checkpoint',
    'history_buffers_to_plain', 'load_checkpoint_weights_only', 'plain_to_history_buffers'
]
