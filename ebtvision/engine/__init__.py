from .checkpoint import (AtomicLocalBackend, CheckpointLoadError, ResumeSearch, atomic_write,
                         history_buffers_to_plain, load_checkpoint_weights_only,
                         plain_to_history_buffers, remove_partial_writes,
                         search_resumable_checkpoint, set_aside)
from .divergence import enable_divergence_checks
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403

__all__ = [
    'AtomicLocalBackend', 'CheckpointLoadError', 'ResumeSearch', 'atomic_write',
    'enable_divergence_checks',
    'history_buffers_to_plain', 'load_checkpoint_weights_only', 'plain_to_history_buffers',
    'remove_partial_writes', 'search_resumable_checkpoint', 'set_aside'
]
