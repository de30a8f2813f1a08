from .data_check import DataNotFoundError, check_data_roots
from .setup_env import register_all_modules, setup_cpu_distributed, teardown_distributed

__all__ = ['DataNotFoundError', 'check_data_roots', 'register_all_modules',
           'setup_cpu_distributed', 'teardown_distributed']
