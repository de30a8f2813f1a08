from .denoise_visualization_hook import DenoiseVisualizationHook

__all__ = ['DenoiseVisualizationHook']
