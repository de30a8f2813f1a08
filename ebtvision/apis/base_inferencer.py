"""What every inferencer of :mod:`ebtvision.apis` shares.

A config (path or :class:`Config`) and a checkpoint (file or URL) give the model, loaded
weights-only through :func:`init_model`; the model must be of the inferencer's task
(an image denoiser, a next-frame model, a language model). The inferencer then knows
whether it holds an Energy-Based Transformer (``is_ebt``: ``isinstance(model,
EnergyBasedModel)``, the one test used anywhere), how many steps it runs by default, and
checks the thinking options of a request (``num_steps``, ``alpha``, ``num_candidates``,
``tolerance``) with the validator the models and tools use, refusing the EBT-only ones
for a baseline.
"""
import os
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config

from ebtvision.models.thinking.options import THINKING_KEYS, check_option
from .model_loading import ModelLoadError, init_model, load_config

#: Values of the thinking options that change nothing: a baseline may be given these.
NEUTRAL_OPTIONS = dict(num_candidates=1, tolerance=0)


def _energy_based_model() -> type:
    from ebtvision.models import EnergyBasedModel
    return EnergyBasedModel


class BaseInferencer:
    """Builds the model of a config, loads its checkpoint weights-only, checks options.

    Subclasses name their task: :meth:`task_class` (the model base class the config must
    build), ``TASK`` (e.g. ``'a next-frame model'``) and ``MODEL_TYPES`` (the registered
    models of that task, for messages); ``BASELINE_OPTIONS`` lists the thinking options a
    baseline takes as well (the DiT's ``num_steps``: its reverse steps), ``ONE_PASS`` how
    a baseline predicts (for the message refusing EBT-only options).

    Args:
        config: Config file or :class:`Config`.
        checkpoint: Checkpoint file or URL, loaded weights-only (see :func:`init_model`);
            ``None`` keeps random weights (smoke tests only).
        device: ``'cpu'`` or ``'cuda[:N]'``.
        cfg_options: Overrides merged into the config.

    Attributes:
        model: The model, in eval mode; ``model.cfg`` is the config it was built from.
        cfg: That config.
        device: Where the model runs.
        is_ebt: Whether the model is an Energy-Based Transformer (thinks, has energies).

    Raises:
        ModelLoadError: See :func:`init_model`; also when the config's model is not of
            the inferencer's task.
    """

    TASK = 'a model'
    MODEL_TYPES: Tuple[str, ...] = ()
    BASELINE_OPTIONS: Tuple[str, ...] = ()
    ONE_PASS = 'predicts in one pass'

    def __init__(self,
                 config: Union[str, os.PathLike, Config],
                 checkpoint: Optional[str],
                 device: Union[str, torch.device] = 'cpu',
                 cfg_options: Optional[dict] = None) -> None:
        self.model = init_model(config, checkpoint, device, cfg_options)
        if not isinstance(self.model, self.task_class()):
            raise ModelLoadError(f'the config builds a {type(self.model).__name__}, not '
                                 f'{self.TASK} {self._types()}')
        self.cfg = self.model.cfg
        self.device = torch.device(device)
        self.is_ebt = isinstance(self.model, _energy_based_model())

    # ------------------------------------------------------------------ the task
    @classmethod
    def task_class(cls) -> type:
        """The model base class of the task (imported late: the models are heavy)."""
        return torch.nn.Module

    @classmethod
    def _types(cls) -> str:
        return f'({", ".join(cls.MODEL_TYPES)})' if cls.MODEL_TYPES else ''

    @classmethod
    def model_class(cls, config: Union[str, os.PathLike, Config],
                    cfg_options: Optional[dict] = None) -> type:
        """The class the config's model is built as, checked without building it.

        For command lines that check their options against the model before the (slow)
        build; ``issubclass(model_class, EnergyBasedModel)`` tells an EBT.

        Raises:
            ModelLoadError: A missing or unreadable config, or a model of another task.
        """
        from ebtvision.registry import MODELS
        from ebtvision.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        cfg = load_config(config, cfg_options)
        model_type = cfg.model.get('type')
        model_cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
        if not (isinstance(model_cls, type) and issubclass(model_cls, cls.task_class())):
            raise ModelLoadError(f'model type {model_type!r} is not {cls.TASK} {cls._types()}')
        return model_cls

    # ------------------------------------------------------------------ options
    @property
    def default_steps(self) -> Optional[int]:
        """Steps run when ``num_steps`` is not given: an EBT's ``test_cfg.num_steps``, else
        its thinker's trained count; a baseline's ``test_cfg.num_steps`` (the DiT's
        reverse steps), or ``None`` for one pass."""
        if self.is_ebt:
            return int(self.model.test_cfg.get('num_steps') or self.model.thinker.num_steps)
        steps = self.model.test_cfg.get('num_steps')
        return None if steps is None else int(steps)

    @staticmethod
    def validate_thinking(num_steps=None, alpha=None, num_candidates=None,
                          tolerance=None) -> Dict[str, object]:
        """The options checked by the shared validator (``None`` = the model's default).

        Raises:
            ThinkingOptionError: (a ``ValueError``) a value out of range; the message
                names the argument, e.g. ``argument.num_steps must be an integer >= 1``.
        """
        given = dict(num_steps=num_steps, alpha=alpha, num_candidates=num_candidates,
                     tolerance=tolerance)
        return {name: check_option(name, given[name], 'argument') for name in THINKING_KEYS}

    def ebt_only_message(self, asked: Sequence[str]) -> str:
        """Why the options ``asked`` are refused for this baseline."""
        verb = 'applies' if len(asked) == 1 else 'apply'
        return (f'{", ".join(asked)} {verb} to EBTs; {type(self.model).__name__} '
                f'{self.ONE_PASS}')

    def refuse_ebt_only(self, options: Dict[str, object]) -> None:
        """Raise ``ValueError`` when a baseline is given options only an EBT can use."""
        if self.is_ebt:
            return
        asked = [name for name, value in options.items()
                 if value is not None and name not in self.BASELINE_OPTIONS
                 and not (name in NEUTRAL_OPTIONS and value == NEUTRAL_OPTIONS[name])]
        if asked:
            raise ValueError(self.ebt_only_message(asked))

    def check_thinking(self, num_steps=None, alpha=None, num_candidates=None,
                       tolerance=None) -> Dict[str, object]:
        """:meth:`validate_thinking`, then :meth:`refuse_ebt_only`; the clean options."""
        options = self.validate_thinking(num_steps, alpha, num_candidates, tolerance)
        self.refuse_ebt_only(options)
        return options

    def model_options(self, options: Dict[str, object]) -> Dict[str, object]:
        """The options to pass to the model: the given ones for an EBT, none for a
        baseline (whose options are neutral by then)."""
        if not self.is_ebt:
            return {}
        return {name: value for name, value in options.items() if value is not None}
