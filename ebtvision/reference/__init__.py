"""Weights trained with the reference implementation (github alexiglad/EBT), in ours.

``FAMILIES`` maps a family name to its :class:`StateDictMapping`;
:func:`convert_reference_checkpoint` turns the state dict of a reference Lightning
checkpoint into one our models load. ``tools/model_converters/from_reference.py`` is
the command line; ``tools/benchmark/parity.py`` proves the mappings by comparing losses
and gradients of both implementations.
"""
from typing import Dict

from .image import IMAGE_DIT, IMAGE_EBT
from .mapping import MappingError, StateDictMapping, TensorDict
from .text import TEXT_EBT, TEXT_TRANSFORMERPP
from .video import VIDEO_EBT, VIDEO_TRANSFORMERPP

FAMILIES: Dict[str, StateDictMapping] = {
    'image_ebt': IMAGE_EBT,
    'image_dit': IMAGE_DIT,
    'video_ebt': VIDEO_EBT,
    'video_transformerpp': VIDEO_TRANSFORMERPP,
    'text_ebt': TEXT_EBT,
    'text_transformerpp': TEXT_TRANSFORMERPP,
}

# The reference trainer (a LightningModule) holds the model as ``self.model``.
LIGHTNING_PREFIX = 'model.'


def reference_state_dict(checkpoint: dict) -> TensorDict:
    """The model's tensors of a reference checkpoint, without the trainer's prefix."""
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict) or not state:
        raise MappingError('the checkpoint holds no state_dict')
    if all(key.startswith(LIGHTNING_PREFIX) for key in state):
        state = {key[len(LIGHTNING_PREFIX):]: value for key, value in state.items()}
    return state


def convert_reference_checkpoint(checkpoint: dict, family: str) -> TensorDict:
    """Our state dict from a reference checkpoint (or bare state dict) of ``family``."""
    if family not in FAMILIES:
        raise MappingError(f'unknown family {family!r}; choose from {sorted(FAMILIES)}')
    return FAMILIES[family].convert(reference_state_dict(checkpoint))


__all__ = ['FAMILIES', 'MappingError', 'StateDictMapping', 'convert_reference_checkpoint',
           'reference_state_dict']
