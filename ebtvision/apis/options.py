"""The inference options' validators, for command lines and scripts over the API.

The same checks the models, the tools and the inferencers use (re-exported from
:mod:`ebtvision.models.thinking.options`): ``cli_type(positive_int)`` is an argparse
``type=`` that reports a bad value in one line.
"""
from ebtvision.models.thinking.options import (THINKING_KEYS, ThinkingOptionError,
                                               check_option, cli_type, noise_level,
                                               non_negative, positive_int, step_size)

__all__ = [
    'THINKING_KEYS', 'ThinkingOptionError', 'check_option', 'cli_type', 'noise_level',
    'non_negative', 'positive_int', 'step_size'
]
