"""Latent cache extraction: the stored latents are the encoder's, in the cache's dtype."""
import torch

from conftest import (LATENT_TBF, build_latent_encoder, data_warnings, extract_latents,
                      latent_pipeline)
from ebtvision.datasets import LatentClipDataset, VideoFolderDataset


def test_float16_cache(latent_videos, tmp_path):
    summary = extract_latents(latent_videos, tmp_path / 'half', dtype='float16')
    assert summary['pending'] == []
    with data_warnings(match='d_corrupt'):
        half = LatentClipDataset(str(tmp_path / 'half'), clip_len=4, test_mode=True)
    encoder = build_latent_encoder()
    pixels = VideoFolderDataset(latent_videos, time_between_frames=LATENT_TBF, clip_len=4,
                                test_mode=True, file_list=['a.avi'], pipeline=latent_pipeline())
    expected = encoder.encode(pixels[0]['inputs'].float() / 127.5 - 1.0)
    assert half[0]['inputs'].dtype == torch.float32
    torch.testing.assert_close(half[0]['inputs'], expected, atol=1e-3, rtol=1e-3)
