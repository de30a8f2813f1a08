"""PixelPatchEncoder: the exact, weightless pixels <-> latents frame encoder."""
import pytest
import torch

from ebtvision.models.encoders import PixelPatchEncoder


# ---------------------------------------------------------------------- PixelPatchEncoder
def test_pixel_patch_shapes_round_trip_and_latent_shape():
    encoder = PixelPatchEncoder(patch_size=4)
    x = torch.rand(2, 3, 32, 24) * 2 - 1
    z = encoder.encode(x)
    assert z.shape == (2, 48, 8, 6) and z.dtype == torch.float32
    assert encoder.latent_shape(32) == (48, 8, 8)
    assert encoder.latent_shape((32, 24)) == tuple(z.shape[1:])
    torch.testing.assert_close(encoder.decode(z), x, rtol=0, atol=0)  # exact inverse
    # the first latent channel is the top-left pixel of each patch's red channel
    torch.testing.assert_close(z[:, 0], x[:, 0, ::4, ::4])
    scaled = PixelPatchEncoder(patch_size=4, scale=0.5)
    torch.testing.assert_close(scaled.encode(x), 0.5 * z)
    torch.testing.assert_close(scaled.decode(scaled.encode(x)), x)
    assert encoder.has_decoder and not list(encoder.parameters())


@pytest.mark.parametrize('bad', [torch.zeros(3, 32, 32), torch.zeros(1, 1, 32, 32),
                                 torch.zeros(1, 3, 30, 32), torch.zeros(1, 3, 32, 32,
                                                                         dtype=torch.uint8)])
def test_pixel_patch_rejects_bad_frames(bad):
    with pytest.raises(ValueError, match='PixelPatchEncoder'):
        PixelPatchEncoder(patch_size=4).encode(bad)


def test_pixel_patch_rejects_bad_latents_and_sizes():
    encoder = PixelPatchEncoder(patch_size=4)
    with pytest.raises(ValueError, match=r'\(N, 48, h, w\)'):
        encoder.decode(torch.zeros(1, 12, 8, 8))
    with pytest.raises(ValueError, match='multiple of the downsampling factor 4'):
        encoder.latent_shape(30)
    with pytest.raises(ValueError, match='patch_size'):
        PixelPatchEncoder(patch_size=0)
