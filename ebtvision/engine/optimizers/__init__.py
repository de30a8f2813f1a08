from .alpha_constructor import ThinkerAlphaOptimWrapperConstructor  # noqa: F401
from .amp_optim_wrapper import (AMP_DTYPES, DeviceAmpOptimWrapper, check_amp_dtype,
                                default_amp_dtype)
from .finite_optim_wrapper import (FiniteCheckAmpOptimWrapper, FiniteCheckMixin,
                                   FiniteCheckOptimWrapper, NonFiniteError, divergence_hint)

__all__ = [
    'AMP_DTYPES', 'DeviceAmpOptimWrapper', 'FiniteCheckAmpOptimWrapper', 'FiniteCheckMixin',
    'FiniteCheckOptimWrapper', 'NonFiniteError', 'check_amp_dtype', 'default_amp_dtype',
    'divergence_hint'
]
