from .scaling_fit import (PowerLawFit, bootstrap_exponent, compare_scaling_rates,
                          describe_interval, fit_power_law, predict_power_law)

__all__ = [
    'PowerLawFit', 'bootstrap_exponent', 'compare_scaling_rates', 'describe_interval',
    'fit_power_law', 'predict_power_law'
]
