"""Import every registering module and set ``ebtvision`` as the default scope."""
import sys
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all ebtvision modules into the registries.

    Args:
        init_default_scope: Set ``ebtvision`` as the current default scope so that
            ``type='...'`` names in configs resolve to ebtvision's registries first.
    """
    import ebtvision.datasets  # noqa: F401
    import ebtvision.engine  # noqa: F401
    import ebtvision.evaluation  # noqa: F401
    import ebtvision.models  # noqa: F401
    import ebtvision.visualization  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('ebtvision', scope_name='ebtvision')
    elif current.scope_name != 'ebtvision':
        warnings.warn(f'The current default scope "{current.scope_name}" is not "ebtvision"; '
                      'a new default scope "ebtvision" is created.')
        name = f'ebtvision-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name='ebtvision')


def setup_cpu_distributed(cfg) -> None:
    """Make ``--launcher pytorch`` work on machines without CUDA.

    MMEngine's launcher always calls ``torch.cuda.set_device`` and wraps the model with
    ``device_ids=[local_rank]``; both fail on CPU. Without CUDA this initialises the
    process group itself with gloo (MMEngine then skips its own init) and, for MMEngine's
    ``Runner``, wraps the model with ``device_ids=None``. ``runner_type='FlexibleRunner'``
    wraps through its ``strategy`` instead, whose ebtvision versions (``DDPStrategy``,
    ``FSDPStrategy``) handle the CPU themselves. Does nothing with CUDA or without a
    launcher.
    """
    import os

    import torch
    import torch.distributed as torch_dist

    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise RuntimeError(f'launcher "{cfg.launcher}" needs CUDA here; on CPU use '
                           '--launcher pytorch (torchrun)')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']))
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if _is_flexible_runner(cfg.get('runner_type', 'Runner')):
        return  # it ignores model_wrapper_cfg (the tools refuse a config with one)
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False)


def _is_flexible_runner(runner_type) -> bool:
    from mmengine.runner import FlexibleRunner

    from ebtvision.registry import RUNNERS
    runner_cls = RUNNERS.get(runner_type) if isinstance(runner_type, str) else runner_type
    return isinstance(runner_cls, type) and issubclass(runner_cls, FlexibleRunner)


def teardown_distributed() -> None:
    """End a distributed run cleanly: every rank finished, then the process leaves.

    Gloo's background threads can abort a process that has finished its work ("terminate
    called without an active exception", exit -6), turning a good run into a failure: it
    happened at interpreter exit, after the last checkpoint and validation. So, with the
    caller's runner already released (its DDP or FSDP wrapper holds the process group), the
    ranks meet at a barrier, the group is destroyed, the logs are flushed, and a distributed
    process exits at once (``os._exit(0)``), before interpreter shutdown can tear threads
    down in the wrong order. Call it last. A single process just returns.
    """
    import gc
    import logging
    import os

    import torch.distributed as torch_dist

    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    gc.collect()  # the released runner's DDP reducer / FSDP state go before the group
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
