"""Data sample carried through classification (e.g. the ImageNet linear probe)."""
from mmengine.structures import BaseDataElement


class ClassifyDataSample(BaseDataElement):
    """One image of a classification batch.

    Metainfo (set by datasets through ``PackClassifyInputs``): ``img_path``,
    ``sample_idx``, ``gt_label`` (int class index), ``ori_shape``, ``img_shape``.

    Data fields (set by a classifier in ``mode='predict'``):
        pred_score: (C,) float tensor of class scores (probabilities or logits).
    """
