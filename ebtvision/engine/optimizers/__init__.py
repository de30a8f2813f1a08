from .alpha_constructor import ThinkerAlphaOptimWrapperConstructor  # noqa: F401
from .finite_optim_wrapper import (FiniteCheckAmpOptimWrapper, FiniteCheckMixin,
                                   FiniteCheckOptimWrapper, NonFiniteError, divergence_hint)

__all__ = [
    'FiniteCheckAmpOptimWrapper', 'FiniteCheckMixin', 'FiniteCheckOptimWrapper',
    'NonFiniteError', 'divergence_hint'
]
