from .base_denoiser import BaseDenoiser, noise_level_key
from .causal_predictor import CausalPredictor, Continuation
from .dit_denoiser import DiTDenoiser
from .ebt_denoiser import EBTDenoiser
from .ebt_language_model import EBTLanguageModel
from .ebt_next_frame import EBTNextFrame
from .language_model import LanguageModel, TextPrediction
from .linear_probe import LinearProbe
from .next_frame_predictor import NextFramePredictor
from .task_model import TaskModel
from .transformer_pp_language_model import TransformerPPLanguageModel
from .transformer_pp_next_frame import TransformerPPNextFrame

__all__ = [
    'BaseDenoiser', 'noise_level_key', 'DiTDenoiser', 'EBTDenoiser', 'NextFramePredictor',
    'EBTNextFrame', 'TransformerPPNextFrame', 'LinearProbe', 'LanguageModel', 'TextPrediction',
    'EBTLanguageModel', 'TransformerPPLanguageModel', 'TaskModel', 'CausalPredictor',
    'Continuation'
]
