from .checkpoint import (AtomicLocalBackend, CheckpointLoadError, ResumeSearch, atomic_write,
                         history_buffers_to_plain, load_checkpoint_weights_only,
                         plain_to_history_buffers, remove_partial_writes,
                         search_resumable_checkpoint, set_aside)
from .divergence import enable_divergence_checks
from .flexible_runner import FlexibleRunner
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .strategies import (DDPStrategy, FSDPStrategy, block_wrap_policy, check_fsdp_config,
                         full_parameters)

__all__ = [
    'AtomicLocalBackend', 'CheckpointLoadError', 'DDPStrategy', 'FSDPStrategy', 'FlexibleRunner',
    'ResumeSearch', 'atomic_write', 'block_wrap_policy', 'check_fsdp_config',
    'enable_divergence_checks', 'full_parameters',
    'history_buffers_to_plain', 'load_checkpoint_weights_only', 'plain_to_history_buffers',
    'remove_partial_writes', 'search_resumable_checkpoint', 'set_aside'
]
