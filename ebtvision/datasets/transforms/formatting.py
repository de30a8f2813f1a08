"""Packing of a transformed sample into model inputs and a data sample."""
from typing import Sequence

import numpy as np
import torch

from ebtvision.registry import TRANSFORMS
from ebtvision.structures import ClassifyDataSample, DenoiseDataSample


@TRANSFORMS.register_module()
class PackDenoiseInputs:
    """Pack the image as a (C, H, W) float tensor plus a :class:`DenoiseDataSample`.

    The output is what MMEngine's ``pseudo_collate``/``default_collate`` and the data
    preprocessor expect: ``{'inputs': Tensor, 'data_samples': DenoiseDataSample}``.

    Required keys: ``img`` ((H, W, C) array).

    Output keys: ``inputs`` (contiguous float32 tensor (C, H, W)), ``data_samples``
    (metainfo taken from ``meta_keys`` that are present in the results).

    Args:
        meta_keys: Result keys copied into the data sample's metainfo when present.
            ``sample_idx`` is added to each data info by ``BaseDataset``.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'sample_idx', 'ori_shape',
                                             'img_shape')) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        """Build ``{'inputs', 'data_samples'}`` from ``results``."""
        img = np.asarray(results['img'], dtype=np.float32)
        if img.ndim == 2:
            img = img[:, :, None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        metainfo = {k: results[k] for k in self.meta_keys if k in results}
        return dict(inputs=inputs, data_samples=DenoiseDataSample(metainfo=metainfo))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


@TRANSFORMS.register_module()
class PackClassifyInputs(PackDenoiseInputs):
    """Pack the image as a (C, H, W) float tensor plus a :class:`ClassifyDataSample`.

    Same image packing as :class:`PackDenoiseInputs`; the class label travels in
    the data sample's metainfo (``data_sample.gt_label``, an int).

    Required keys: ``img`` ((H, W, C) array), ``gt_label`` (int).

    Output keys: ``inputs`` (contiguous float32 tensor (C, H, W)), ``data_samples``
    (metainfo taken from ``meta_keys`` that are present in the results).

    Args:
        meta_keys: Result keys copied into the data sample's metainfo when present
            (``gt_label`` is always required).
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'sample_idx', 'gt_label',
                                             'ori_shape', 'img_shape')) -> None:
        super().__init__(meta_keys=meta_keys)

    def __call__(self, results: dict) -> dict:
        """Build ``{'inputs', 'data_samples'}`` from ``results``."""
        if 'gt_label' not in results:
            raise KeyError(
                f'PackClassifyInputs needs results["gt_label"] (the class index), '
                f'got keys {sorted(results)}; use a labelled dataset such as '
                f'ImageNetDataset or IdxImageDataset.')
        packed = super().__call__(results)
        metainfo = packed['data_samples'].metainfo
        metainfo['gt_label'] = int(results['gt_label'])
        packed['data_samples'] = ClassifyDataSample(metainfo=metainfo)
        return packed
