"""Roll a next-frame model (EBT or Transformer++) out on a video clip: the API behind
``demo/predict_video.py``.

    from ebtvision.apis import NextFrameInferencer
    inferencer = NextFrameInferencer('configs/quickstart/ebt_nextframe_skvideo.py',
                                     'work_dirs/ebt_nextframe_skvideo/iter_600.pth')
    clip = inferencer.read_clip('walk.mp4', context=4, frames=8)
    result = inferencer(clip, num_candidates=4)
    result.prediction, result.truth, result.energies, result.errors

The clip is encoded to latents; the model sees the first ``context`` real frames and
predicts the next ``frames`` one at a time, each prediction appended to its context
(``model.rollout``, with the KV cache). Each prediction is scored by its latent
smooth-L1 against the real frame it predicts, beside the copy-the-last-context-frame
baseline, and decoded back to pixels. EBTs can think longer (``num_steps``) and
self-verify (``num_candidates``: the lowest-energy of M candidates is kept per frame).
"""
import os
import time
from dataclasses import dataclass
from typing import List, Optional, Union

import numpy as np
import torch

from .base_inferencer import BaseInferencer
from .model_loading import ModelLoadError
from .video_clip import VideoClip, clip_dataset_cfg, read_video_clip


@dataclass
class NextFrameResult:
    """What one rollout produced.

    Attributes:
        truth: Every real frame of the clip (context, then the ground truth of the
            predicted ones), uint8 ``(H, W, 3)``.
        prediction: The predicted frames, uint8 ``(H, W, 3)``.
        energies: Final energy of each predicted frame (the EBT's uncertainty); ``None``
            for models without energies.
        errors: Latent smooth-L1 of each predicted frame against its ground truth.
        copy_last_errors: The same for repeating the last context frame.
        latents: The predicted latents, ``(frames, C, h, w)`` on the CPU.
        context: Real frames the rollout was conditioned on.
        frames: Frames predicted.
        num_steps: Thinking steps per frame (EBTs; ``None`` for one pass).
        num_candidates: Candidates per frame (self-verification; 1 without).
        seconds: Wall time of the model part.
    """
    truth: List[np.ndarray]
    prediction: List[np.ndarray]
    energies: Optional[List[float]]
    errors: List[float]
    copy_last_errors: List[float]
    latents: Optional[torch.Tensor] = None
    context: int = 0
    frames: int = 0
    num_steps: Optional[int] = None
    num_candidates: int = 1
    seconds: float = 0.0


@torch.no_grad()
def rollout_clip(model, inputs: torch.Tensor, data_sample, context: int, frames: int,
                 **options) -> NextFrameResult:
    """Encode a clip, condition ``model`` on ``context`` real frames, predict ``frames``.

    The model-level step of :class:`NextFrameInferencer` (no option checks), for
    scripts that hold a model already.

    Args:
        model: A next-frame model that can decode.
        inputs: ``(L, 3, H, W)`` uint8 frames with ``L >= context + frames``.
        data_sample: The clip's ``VideoDataSample``.
        context: Real frames to condition on.
        frames: Frames to predict.
        **options: Thinking options passed to ``model.rollout``.
    """
    batch = model.data_preprocessor(dict(inputs=[inputs], data_samples=[data_sample]), False)
    inputs, samples = batch['inputs'], batch['data_samples']
    if inputs.shape[1] < context + frames:
        raise ValueError(f'the clip has {inputs.shape[1]} frames, fewer than context '
                         f'{context} + frames {frames}')
    from ebtvision.models.heads import frame_errors
    from ebtvision.visualization import to_uint8_hwc
    latents = model.encode_inputs(inputs, samples)
    real, future = latents[:, :context], latents[:, context:context + frames]
    predicted, energies = model.rollout(real, frames, **options)
    errors = frame_errors(predicted, future, 'smooth_l1')[0]
    copy_last = frame_errors(real[:, -1:].expand_as(future), future, 'smooth_l1')[0]
    decoded = model.decode_latents(predicted)[0]
    return NextFrameResult(
        truth=[to_uint8_hwc(f) for f in inputs[0][:context + frames]],
        prediction=[to_uint8_hwc(f) for f in decoded],
        energies=None if energies is None else energies[0].float().cpu().tolist(),
        errors=errors.float().cpu().tolist(), copy_last_errors=copy_last.float().cpu().tolist(),
        latents=predicted[0].detach().cpu(), context=context, frames=frames)


class NextFrameInferencer(BaseInferencer):
    """Builds a next-frame model from a config and a checkpoint and rolls it out on clips.

    Args:
        config: Config file (or :class:`Config`) of an ``EBTNextFrame`` or
            ``TransformerPPNextFrame`` whose encoder decodes (``PixelPatchEncoder``,
            ``FrozenVAEEncoder``), with a pixel video validation dataset (its settings
            read the clips).
        checkpoint: Checkpoint of that model, loaded weights-only; ``None`` keeps random
            weights (smoke tests only).
        device: ``'cpu'`` or ``'cuda[:N]'``.
        cfg_options: Overrides merged into the config.

    Raises:
        ModelLoadError: See :func:`init_model`; also when the config is not a next-frame
            model or its encoder cannot decode latents back to frames.
    """

    TASK = 'a next-frame model'
    MODEL_TYPES = ('EBTNextFrame', 'TransformerPPNextFrame')
    ONE_PASS = 'predicts each frame in one pass'

    def __init__(self,
                 config,
                 checkpoint: Optional[str],
                 device: Union[str, torch.device] = 'cpu',
                 cfg_options: Optional[dict] = None) -> None:
        super().__init__(config, checkpoint, device, cfg_options)
        if not self.model.can_decode:
            encoder = self.model.encoder
            name = type(encoder).__name__ if encoder is not None else 'no encoder'
            raise ModelLoadError(
                f'the model of this config ({name}) cannot decode latents back to frames, so '
                'there is nothing to show; use a config whose encoder decodes '
                '(PixelPatchEncoder, FrozenVAEEncoder), not one that only reads cached '
                'latents')

    @classmethod
    def task_class(cls) -> type:
        from ebtvision.models import NextFramePredictor
        return NextFramePredictor

    def read_clip(self, video: Optional[str] = None, context: Optional[int] = None,
                  frames: Optional[int] = None,
                  start_fraction: Optional[float] = None) -> VideoClip:
        """A clip of ``video`` read with the config's validation data settings (see
        :func:`read_video_clip` for the defaults).

        Raises:
            VideoClipError: No pixel video dataset in the config, or a video that is
                missing, unreadable or too short.
        """
        config_path = getattr(self.cfg, 'filename', None) or 'the config'
        ds_cfg, ds_cls = clip_dataset_cfg(self.cfg, config_path)
        return read_video_clip(ds_cfg, ds_cls, video, context, frames, start_fraction,
                               config_path)

    def __call__(self,
                 clip: Union[VideoClip, str, os.PathLike],
                 num_steps: Optional[int] = None,
                 alpha: Optional[float] = None,
                 num_candidates: Optional[int] = None,
                 tolerance: Optional[float] = None) -> NextFrameResult:
        """Roll the model out on one clip.

        Args:
            clip: A :class:`VideoClip` (see :meth:`read_clip`), or a video file read
                with the defaults of :meth:`read_clip`.
            num_steps: EBT thinking steps per frame (default: the config's).
            alpha: EBT step size override.
            num_candidates: EBT self-verification: M candidates per frame, the lowest
                final energy is kept (default: the config's, else 1).
            tolerance: EBT adaptive compute: stop once the energy changes by less than
                this fraction per step.

        Raises:
            ValueError: A bad option (the validator's message), or an EBT-only option
                for Transformer++.
            VideoClipError: A video that cannot give a clip.
        """
        options = self.check_thinking(num_steps, alpha, num_candidates, tolerance)
        if not isinstance(clip, VideoClip):
            clip = self.read_clip(clip)
        self.model.eval()
        started = time.perf_counter()
        result = rollout_clip(self.model, clip.inputs, clip.data_sample, clip.context,
                              clip.frames, **self.model_options(options))
        result.seconds = time.perf_counter() - started
        if self.is_ebt:
            result.num_steps = options['num_steps'] or self.default_steps
            result.num_candidates = int(options['num_candidates'] or self.model.test_cfg.get(
                'num_candidates') or 1)
        return result
