"""Registries of ebtvision: children of MMEngine's root registries.

Each child lists the packages that register into it (``locations``), so that
``MODELS.build(dict(type='BidirectionalEBT', ...))`` imports what it needs without
manual imports once the default scope is ``ebtvision``.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['ebtvision.engine'])
# FlexibleRunner builds its strategy from MMEngine's root registry, which looks here first
# when the default scope is ebtvision.
STRATEGIES = Registry('strategy', parent=MMENGINE_STRATEGIES, locations=['ebtvision.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['ebtvision.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['ebtvision.engine'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['ebtvision.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['ebtvision.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=['ebtvision.datasets.transforms'])
MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['ebtvision.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['ebtvision.models'])
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['ebtvision.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['ebtvision.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['ebtvision.engine'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['ebtvision.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['ebtvision.evaluation'])
VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, locations=['ebtvision.visualization'])
VISBACKENDS = Registry(
    'vis_backend', parent=MMENGINE_VISBACKENDS, locations=['ebtvision.visualization'])
