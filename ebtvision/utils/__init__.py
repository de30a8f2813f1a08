from .cli import (ArgumentParser, build_runner, check_model_config, debugging, exit_with_error,
                  read_config)
from .data_check import DataNotFoundError, check_data_roots
from .optional import MissingExtraError, exit_on_missing_extra, require, try_import
from .setup_env import register_all_modules, setup_cpu_distributed, teardown_distributed

__all__ = [
    'ArgumentParser', 'build_runner', 'check_model_config', 'debugging', 'exit_with_error',
    'read_config', 'DataNotFoundError', 'check_data_roots', 'register_all_modules',
    'setup_cpu_distributed', 'teardown_distributed', 'MissingExtraError',
    'exit_on_missing_extra', 'require', 'try_import'
]
