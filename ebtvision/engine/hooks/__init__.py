from .atomic_checkpoint_hook import AtomicCheckpointHook
from .data_skip_hook import DataSkipHook
from .denoise_visualization_hook import DenoiseVisualizationHook
from .divergence_hook import DivergenceHook
from .next_frame_visualization_hook import NextFrameVisualizationHook
from .resume_state_hook import ResumeStateHook
from .thinking_visualization_hook import ThinkingVisualizationHook

__all__ = [
    'AtomicCheckpointHook', 'DataSkipHook', 'DenoiseVisualizationHook', 'DivergenceHook',
    'NextFrameVisualizationHook', 'ResumeStateHook', 'ThinkingVisualizationHook'
]
