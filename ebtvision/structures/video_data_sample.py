"""Data sample carried through the next-frame prediction pipeline."""
from mmengine.structures import BaseDataElement


class VideoDataSample(BaseDataElement):
    """One clip of ``L = context + 1`` frames.

    Metainfo (set by datasets):
        video_path, video_id: Where the clip comes from.
        fps: The video's own frame rate.
        frame_indices: The ``L`` decoded frame indices (padding repeats the last one).
        num_padded: How many trailing frames are padding (videos too short for a clip);
            predictions of padded frames are left out of losses and metrics.
        input_kind: ``'pixels'`` (inputs are (L, 3, H, W) uint8 frames) or ``'latents'``
            (inputs are (L, C, h, w) float latents from the latent cache).
        label, template: SSv2 annotations when present. ``sample_idx``: dataset index.

    Data fields (set by ``mode='predict'``), CPU tensors:
        gt_latents: (L, C, h, w) latents of the clip.
        pred_latents: (T, C, h, w) prediction of frames 1..T (T = L - 1).
        energies: (T,) final energy of each predicted frame (EBT only).
        energy_trajectory: (steps + 1, T) energies along the thinking trajectory (EBT only).
        gt_frames: (L, 3, H, W) frames 0..T in [-1, 1]: the real frames (for latent
            inputs, the decoded ground-truth latents), when the model decodes at evaluation.
        pred_frames: (T, 3, H, W) decoded predictions of frames 1..T, likewise.
    """
