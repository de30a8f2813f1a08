from .denoise_data_sample import DenoiseDataSample
from .video_data_sample import VideoDataSample

__all__ = ['DenoiseDataSample', 'VideoDataSample']
from .classify_data_sample import ClassifyDataSample  # noqa: E402

__all__ += ['ClassifyDataSample']
from .text_data_sample import TextDataSample  # noqa: E402

__all__ += ['TextDataSample']
