"""What the next-frame EBT and the Transformer++ baseline share.

A clip of ``L = context + 1`` frames is encoded to latents ``z_0 .. z_{L-1}`` (by the
frozen encoder, or read from the latent cache); the model sees the real frames
``z_0 .. z_{T-1}`` (T = L - 1) and predicts ``z_1 .. z_T``, all T in one pass.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch

from ebtvision.registry import MODELS
from ebtvision.structures import VideoDataSample
from ..heads import NextFrameHead
from ..layers.kv_cache import KVCache
from ..thinking.options import check_test_cfg
from .causal_predictor import CausalPredictor



class Prediction(NamedTuple):
    """What ``predict_next_latents`` returns."""
    latents: torch.Tensor  #: (B, T, C, h, w) predicted next latents
    energies: Optional[torch.Tensor] = None  #: (B, T) final energies (EBTs)
    trajectory: Optional[torch.Tensor] = None  #: (steps + 1, B, T) energies along thinking
    steps_used: Optional[torch.Tensor] = None  #: (B,) steps taken (adaptive compute)


class NextFramePredictor(CausalPredictor):
    """Base class of next-frame predictors over frame latents.

    Args:
        backbone: Config of the causal transformer.
        head: Config of :class:`NextFrameHead`; ``latent_shape`` and ``embed_dims`` are
            filled in from the encoder and the backbone when absent.
        encoder: Config of the frozen frame encoder (``FrozenVAEEncoder``,
            ``PixelPatchEncoder``). May be None when training only from cached latents
            (then give ``latent_shape``; nothing can be decoded).
        frame_size: Frame size (int or (H, W)) the encoder sees, to size the latents.
        latent_shape: (C, h, w) of a frame latent, instead of asking the encoder.
        eval_seed: Seed of the evaluation's initial candidates: drawn per sample from
            ``(eval_seed, sample_idx)``, so every run scores the same starting points.
        test_cfg: Inference options: ``decode`` (decode predictions to pixels for PSNR
            and visualisation; default True when the encoder can decode), and for EBTs
            ``num_steps``, ``alpha``, ``num_candidates``.
        data_preprocessor: Config of the data preprocessor.
        init_cfg: MMEngine init config.
    """

    #: The ``test_cfg`` keys this model reads (subclasses add theirs).
    TEST_CFG_KEYS = ('decode', )
    DEFAULT_PREPROCESSOR = 'VideoDataPreprocessor'

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 encoder: Optional[dict] = None,
                 frame_size=None,
                 latent_shape: Optional[Sequence[int]] = None,
                 eval_seed: int = 0,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.encoder = MODELS.build(encoder) if isinstance(encoder, dict) else encoder
        if latent_shape is None:
            if self.encoder is None or frame_size is None:
                raise ValueError('give latent_shape, or an encoder and the frame_size it sees')
            latent_shape = self.encoder.latent_shape(frame_size)
        self.backbone = MODELS.build(backbone)
        head = dict(head)
        head.setdefault('latent_shape', tuple(latent_shape))
        head.setdefault('embed_dims', self.backbone.embed_dims)
        self.head = MODELS.build(head)
        if not isinstance(self.head, NextFrameHead):
            raise TypeError(f'head must build a NextFrameHead, got {type(self.head)}')
        self.eval_seed = eval_seed
        self.test_cfg = check_test_cfg(test_cfg, self.TEST_CFG_KEYS, type(self).__name__)

    # ----------------------------------------------------------------- inputs
    @property
    def can_decode(self) -> bool:
        return self.encoder is not None and getattr(self.encoder, 'has_decoder', False)

    def encode_inputs(self, inputs: torch.Tensor,
                      data_samples: Optional[List[VideoDataSample]]) -> torch.Tensor:
        """(B, L, 3, H, W) frames in [-1, 1], or cached latents, -> (B, L, C, h, w)."""
        kinds = {sample.metainfo.get('input_kind', 'pixels') for sample in data_samples or []}
        if len(kinds) > 1:
            raise ValueError(f'a batch mixes input kinds {sorted(kinds)}')
        if kinds == {'latents'}:
            latents = inputs
        else:
            if self.encoder is None:
                raise RuntimeError('pixel clips need an encoder; this model was built without '
                                   'one (train from the latent cache or configure encoder=)')
            latents = self.encoder.encode(inputs.flatten(0, 1)).unflatten(0, inputs.shape[:2])
        self.head.check_latents(latents)
        return latents

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, C, h, w) latents -> (B, T, 3, H, W) frames in [-1, 1]."""
        return self.encoder.decode(latents.flatten(0, 1)).unflatten(0, latents.shape[:2])

    @staticmethod
    def target_mask(data_samples: Optional[List[VideoDataSample]], batch: int, frames: int,
                    device) -> torch.Tensor:
        """(B, T) True where the predicted frame is real, False where it is padding."""
        mask = torch.ones(batch, frames, dtype=torch.bool, device=device)
        for position, sample in enumerate(data_samples or []):
            padded = int(sample.metainfo.get('num_padded', 0))
            if padded:
                mask[position, max(frames - padded, 0):] = False
        return mask

    # ----------------------------------------------------------------- API
    def predict_tensor(self, inputs: torch.Tensor,
                       data_samples: Optional[List[VideoDataSample]] = None) -> torch.Tensor:
        """The (B, T, C, h, w) predicted latents of frames 1..T."""
        latents = self.encode_inputs(inputs, data_samples)
        return self.predict_next_latents(latents[:, :-1], data_samples)[0]

    def predict_next_latents(self, real: torch.Tensor,
                             data_samples: Optional[List[VideoDataSample]] = None,
                             cache: Optional[KVCache] = None, **kwargs) -> Prediction:
        """Predict frames 1..T from real frames 0..T-1 (latents (B, T, C, h, w)).

        With a ``cache`` of the first frames' keys and values, the rest are appended to it
        and only frame T is predicted, (B, 1, C, h, w) (rollout).
        """
        raise NotImplementedError

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[VideoDataSample]] = None) -> List[VideoDataSample]:
        if data_samples is None:
            data_samples = [VideoDataSample() for _ in range(inputs.shape[0])]
        latents = self.encode_inputs(inputs, data_samples)
        prediction = self.predict_next_latents(latents[:, :-1], data_samples)
        pred, energies, trajectory = prediction.latents, prediction.energies, prediction.trajectory
        decode = self.test_cfg.get('decode', True) and self.can_decode
        if decode:
            with torch.no_grad():
                pred_frames = self.decode_latents(pred)
                if data_samples[0].metainfo.get('input_kind', 'pixels') == 'latents':
                    gt_frames = self.decode_latents(latents)
                else:
                    gt_frames = inputs
        for position, sample in enumerate(data_samples):
            sample.gt_latents = latents[position].detach().cpu()
            sample.pred_latents = pred[position].detach().cpu()
            if energies is not None:
                sample.energies = energies[position].detach().cpu()
                sample.energy_trajectory = trajectory[:, position].detach().cpu()
            if prediction.steps_used is not None:
                sample.steps_used = prediction.steps_used[position].detach().cpu()
            if decode:
                sample.pred_frames = pred_frames[position].detach().cpu()
                sample.gt_frames = gt_frames[position].detach().cpu()
        return data_samples

    def predict_next(self, sequence, data_samples, seed_offset, cache, **kwargs):
        prediction = self.predict_next_latents(sequence, data_samples, seed_offset=seed_offset,
                                               cache=cache, **kwargs)
        energy = None if prediction.energies is None else prediction.energies[:, -1]
        return prediction.latents[:, -1:], energy, prediction.steps_used

    def rollout(self, context: torch.Tensor, num_frames: int, use_cache: bool = True,
                **kwargs) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Predict ``num_frames`` frames autoregressively after ``context`` latents.

        Each new frame is the prediction of the last position given every real and
        already predicted frame; it is then appended as if real (see
        :meth:`CausalPredictor.autoregress`; ``kwargs`` are thinking options, e.g.
        ``num_candidates``).

        Args:
            context: (B, k, C, h, w) latents of the k conditioning frames.
            num_frames: Frames to predict.
            use_cache: Read each new frame against the kept keys and values.

        Returns:
            ``(frames, energies)``: (B, n, C, h, w) predicted latents and their (B, n)
            final energies (None for models without energies).
        """
        continuation = self.autoregress(context, num_frames, use_cache, **kwargs)
        return continuation.items, continuation.energies
