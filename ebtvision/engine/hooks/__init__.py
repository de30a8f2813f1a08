from .denoise_visualization_hook import DenoiseVisualizationHook
from .next_frame_visualization_hook import NextFrameVisualizationHook
from .resume_state_hook import ResumeStateHook
from .thinking_visualization_hook import ThinkingVisualizationHook

__all__ = [
    'DenoiseVisualizationHook', 'NextFrameVisualizationHook', 'ResumeStateHook',
    'ThinkingVisualizationHook'
]
