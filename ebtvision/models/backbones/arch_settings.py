"""Model sizes of the paper (docs/method.md#model-sizes): layers, heads, width."""
from typing import Dict, Union

ARCH_SETTINGS: Dict[str, Dict[str, int]] = {
    '4xs': dict(depth=2, num_heads=2, embed_dims=128),
    '3xs': dict(depth=4, num_heads=4, embed_dims=256),
    'xxs': dict(depth=6, num_heads=6, embed_dims=384),
    'xs': dict(depth=12, num_heads=6, embed_dims=384),
    'small': dict(depth=12, num_heads=12, embed_dims=768),
    'medium': dict(depth=24, num_heads=16, embed_dims=1024),
    'large': dict(depth=24, num_heads=16, embed_dims=1536),
    'xl': dict(depth=24, num_heads=32, embed_dims=2048),
}


def resolve_arch(arch: Union[str, dict]) -> Dict[str, int]:
    """Turn a size name or an explicit dict into ``depth``, ``num_heads``, ``embed_dims``."""
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise KeyError(f'unknown arch "{arch}"; choose one of {sorted(ARCH_SETTINGS)} '
                           'or pass dict(depth=..., num_heads=..., embed_dims=...)')
        return dict(ARCH_SETTINGS[arch])
    missing = {'depth', 'num_heads', 'embed_dims'} - set(arch)
    if missing:
        raise KeyError(f'custom arch is missing {sorted(missing)}')
    return {k: int(arch[k]) for k in ('depth', 'num_heads', 'embed_dims')}
