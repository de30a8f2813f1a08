"""Import every registering module and set ``ebtvision`` as the default scope."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all ebtvision modules into the registries.

    Args:
        init_default_scope: Set ``ebtvision`` as the current default scope so that
            ``type='...'`` names in configs resolve to ebtvision's registries first.
    """
    import ebtvision.datasets  # noqa: F401
    import ebtvision.engine  # noqa: F401
    import ebtvision.evaluation  # noqa: F401
    import ebtvision.models  # noqa: F401
    import ebtvision.visualization  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('ebtvision', scope_name='ebtvision')
    elif current.scope_name != 'ebtvision':
        warnings.warn(f'The current default scope "{current.scope_name}" is not "ebtvision"; '
                      'a new default scope "ebtvision" is created.')
        name = f'ebtvision-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name='ebtvision')
