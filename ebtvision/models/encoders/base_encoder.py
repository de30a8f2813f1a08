"""What every frozen frame encoder shares: shape checks, ``latent_shape``, frozen mode."""
from typing import Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule

FrameSize = Union[int, Sequence[int]]


class BaseFrameEncoder(BaseModule):
    """Base class of frozen frame encoders (pixels <-> latents).

    Subclasses set ``latent_channels`` and ``downsample_factor`` and implement
    :meth:`encode` and :meth:`decode`. The encoder is frozen: it has no trainable
    parameters, stays in eval mode whatever its parent does, and already counts as
    initialised so that a parent's ``init_weights`` does not touch it.

    Frames are ``(N, 3, H, W)`` floats in ``[-1, 1]``; callers flatten any leading
    (batch, time) dims themselves.
    """

    #: Whether :meth:`decode` maps latents back to pixels.
    has_decoder: bool = True
    latent_channels: int
    downsample_factor: int

    def __init__(self, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        # Weights are fixed at construction (identity or pretrained): mark as initialised
        # so the runner's model.init_weights() skips this subtree.
        self._is_init = True

    def _freeze(self) -> None:
        # Call at the end of a subclass's __init__, once its submodules exist.
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> 'BaseFrameEncoder':
        """Stay in eval mode: ``model.train()`` of the parent must not unfreeze dropout/norms."""
        return super().train(False)

    # ----------------------------------------------------------------- shapes
    def latent_shape(self, frame_size: FrameSize) -> Tuple[int, int, int]:
        """``(C, h, w)`` of the latent of one ``frame_size`` frame, without running the model.

        Args:
            frame_size: ``H`` (square) or ``(H, W)``.

        Raises:
            ValueError: If a side is not a positive multiple of ``downsample_factor``.
        """
        if isinstance(frame_size, int):
            height = width = frame_size
        else:
            if len(frame_size) != 2:
                raise ValueError(f'frame_size must be an int or (H, W), got {frame_size!r}')
            height, width = (int(side) for side in frame_size)
        self._check_size(height, width)
        factor = self.downsample_factor
        return self.latent_channels, height // factor, width // factor

    def _check_size(self, height: int, width: int) -> None:
        factor = self.downsample_factor
        if height <= 0 or width <= 0 or height % factor or width % factor:
            raise ValueError(f'{type(self).__name__}: frame size {height}x{width} is not a '
                             f'positive multiple of the downsampling factor {factor}')

    def _check_frames(self, frames: torch.Tensor) -> None:
        if not isinstance(frames, torch.Tensor) or frames.dim() != 4 or frames.shape[1] != 3:
            shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames)
            raise ValueError(f'{type(self).__name__}.encode expects frames (N, 3, H, W), got '
                             f'{shape}; flatten (B, T) into N first')
        if not frames.is_floating_point():
            raise ValueError(f'{type(self).__name__}.encode expects float frames in [-1, 1], '
                             f'got {frames.dtype} (uint8: use x / 127.5 - 1)')
        self._check_size(frames.shape[2], frames.shape[3])

    def _check_latents(self, latents: torch.Tensor) -> None:
        if (not isinstance(latents, torch.Tensor) or latents.dim() != 4
                or latents.shape[1] != self.latent_channels):
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents)
            raise ValueError(f'{type(self).__name__}.decode expects latents '
                             f'(N, {self.latent_channels}, h, w), got {shape}')

    # ----------------------------------------------------------------- API
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` frames in ``[-1, 1]`` -> ``(N, C, h, w)`` float32 latents."""
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` latents -> ``(N, 3, H, W)`` frames clamped to ``[-1, 1]``."""
        raise NotImplementedError

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`encode`."""
        return self.encode(frames)
