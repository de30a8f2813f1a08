from .checkpoint import (AtomicLocalBackend, atomic_write, find_resumable_checkpoint,
                         load_checkpoint_weights_only)
from .hooks import *  # noqa: F401,F403

__all__ = [
    'AtomicLocalBackend', 'atomic_write', 'find_resumable_checkpoint',
    'load_checkpoint_weights_only'
]
