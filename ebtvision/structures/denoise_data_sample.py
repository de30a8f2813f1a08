"""Data sample carried through the denoising pipeline."""
from mmengine.structures import BaseDataElement


class DenoiseDataSample(BaseDataElement):
    """One image of a denoising batch.

    Metainfo (set by datasets): ``img_path``, ``sample_idx``, ``ori_shape``.

    Data fields (set by ``mode='predict'``), all images (C, H, W) floats in [-1, 1] on CPU:
        gt_img: The clean image.
        noisy_imgs: ``{noise_level_key: noisy input}``, keys like ``'0.1'``.
        pred_imgs: ``{noise_level_key: denoised output}``.
        energies: ``{noise_level_key: (steps + 1,) energies along the thinking
            trajectory}`` (EBT only; the last entry is the final candidate's energy).
    """
