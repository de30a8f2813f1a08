from .denoise_data_sample import DenoiseDataSample
from .video_data_sample import VideoDataSample

__all__ = ['DenoiseDataSample', 'VideoDataSample']
