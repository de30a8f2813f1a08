from .next_frame_head import NextFrameHead, frame_errors, masked_frame_loss
from .text_head import TextHead

__all__ = ['NextFrameHead', 'frame_errors', 'masked_frame_loss', 'TextHead']
