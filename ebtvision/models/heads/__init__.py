from .next_frame_head import NextFrameHead, frame_errors, masked_frame_loss

__all__ = ['NextFrameHead', 'frame_errors', 'masked_frame_loss']
