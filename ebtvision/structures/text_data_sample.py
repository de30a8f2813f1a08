"""Data sample carried through language modelling (Dyck completion, packed text)."""
from mmengine.structures import BaseDataElement


class TextDataSample(BaseDataElement):
    """One token sequence of a batch.

    Metainfo (set by ``PackTextInputs``): ``sample_idx``, ``num_tokens`` (real tokens
    before padding, inputs plus the last target), and for Dyck ``prompt_length`` (tokens
    up to and including the separator) and ``completion`` (the closing string).

    Data fields (set in ``mode='predict'``): ``gt_tokens`` (T,) next tokens,
    ``pred_logits`` (T, V), ``loss_mask`` (T,) which targets count, ``energies`` (T,)
    for EBTs, and for Dyck ``pred_completion`` (the generated closing string) and
    ``pred_completion_tokens`` (its token ids).
    """
