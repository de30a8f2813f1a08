from .feature_cache import FeatureCache, feature_cache_key
from .linear_probe_loop import LinearProbeLoop, train_linear_classifier

__all__ = ['FeatureCache', 'feature_cache_key', 'LinearProbeLoop', 'train_linear_classifier']
