from .denoise_data_sample import DenoiseDataSample

__all__ = ['DenoiseDataSample']
