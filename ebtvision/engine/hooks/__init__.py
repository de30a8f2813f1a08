from .denoise_visualization_hook import DenoiseVisualizationHook
from .resume_state_hook import ResumeStateHook

__all__ = ['DenoiseVisualizationHook', 'ResumeStateHook']
