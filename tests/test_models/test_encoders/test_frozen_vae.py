"""FrozenVAEEncoder on a tiny random AutoencoderKL (and both encoders from the registry)."""
import copy
import uuid

import pytest
import torch
from mmengine.model import BaseModule
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import load_state_dict as mmengine_load_state_dict
from torch import nn

from ebtvision.models.encoders import SD_VAE_ARCH, FrozenVAEEncoder, PixelPatchEncoder
from ebtvision.registry import MODELS


# 2 blocks: downsampling 2, so 8x8 frames -> 4x4x4 latents. GroupNorm(4) divides 8 and 16.
TINY_VAE = dict(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                latent_channels=4, down_block_types=('DownEncoderBlock2D', ) * 2,
                up_block_types=('UpDecoderBlock2D', ) * 2, sample_size=8)


def tiny(seed: int = 0, **kwargs) -> FrozenVAEEncoder:
    torch.manual_seed(seed)
    kwargs.setdefault('vae_cfg', TINY_VAE)
    return FrozenVAEEncoder(pretrained=None, **kwargs)


def frames(n: int = 5, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


class Parent(BaseModule):
    """A model holding a frozen encoder next to trainable weights."""

    def __init__(self, **encoder_kwargs) -> None:
        super().__init__()
        self.encoder = tiny(**encoder_kwargs)
        self.proj = nn.Linear(4, 2)


# ---------------------------------------------------------------------- FrozenVAEEncoder
def test_vae_encode_decode_shapes_and_mean_not_sample():
    encoder = tiny()
    x = frames()
    z = encoder.encode(x)
    assert z.shape == (5, 4, 4, 4) and z.dtype == torch.float32
    assert encoder.latent_shape(8) == (4, 4, 4) == tuple(z.shape[1:])
    torch.testing.assert_close(encoder.encode(x), z, rtol=0, atol=0)  # the mean: no sampling
    expected = encoder.vae.encode(x).latent_dist.mean * 0.18215
    torch.testing.assert_close(z, expected)
    out = encoder.decode(z)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    torch.testing.assert_close(out, encoder.vae.decode(z / 0.18215).sample.clamp(-1, 1))
    assert encoder.has_decoder


def test_vae_scaling_factor_and_micro_batches():
    x = frames(7)
    scaled, unscaled = tiny(), tiny(use_scaling=False)
    z_scaled, z_unscaled = scaled.encode(x), unscaled.encode(x)
    torch.testing.assert_close(z_scaled, 0.18215 * z_unscaled)
    # decode divides the factor back out: both give the same frames
    torch.testing.assert_close(scaled.decode(z_scaled), unscaled.decode(z_unscaled))
    # scaling_factor=None reads it from the VAE config
    assert tiny(scaling_factor=None, vae_cfg=dict(TINY_VAE, scaling_factor=0.5)) \
        .scaling_factor == 0.5
    # micro-batches of 2 and 3 frames = one batch of 7
    one_batch = tiny(max_batch=None)
    for max_batch in (2, 3):
        chunked = tiny(max_batch=max_batch)
        torch.testing.assert_close(chunked.encode(x), one_batch.encode(x))
        torch.testing.assert_close(chunked.decode(z_scaled), one_batch.decode(z_scaled))


def test_vae_bfloat16_compute_returns_float32():
    encoder = tiny(dtype='bfloat16')
    assert next(encoder.vae.parameters()).dtype == torch.bfloat16
    z = encoder.encode(frames())
    assert z.dtype == torch.float32
    torch.testing.assert_close(z, tiny().encode(frames()), atol=0.05, rtol=0.05)
    assert encoder.decode(z).dtype == torch.float32
    with pytest.raises(ValueError, match='dtype'):
        tiny(dtype='int8')


def test_vae_is_frozen_and_stays_in_eval_mode():
    parent = Parent()
    encoder = parent.encoder
    assert sum(p.numel() for p in encoder.parameters()) > 0  # the VAE is a registered submodule
    assert not any(p.requires_grad for p in encoder.parameters())
    assert all(p.requires_grad for p in parent.proj.parameters())
    parent.train()
    assert parent.training and parent.proj.training
    assert not encoder.training and not any(m.training for m in encoder.modules())
    x = frames().requires_grad_()
    assert not encoder.encode(x).requires_grad  # no graph through the frozen encoder
    # the runner's init_weights() leaves the (pretrained) weights alone
    before = copy.deepcopy(encoder.vae.state_dict())
    parent.init_weights()
    for key, value in encoder.vae.state_dict().items():
        assert torch.equal(value, before[key])


def test_vae_weights_left_out_of_checkpoints_and_reload_cleanly():
    parent = Parent(seed=0)
    state = parent.state_dict()
    assert set(state) == {'proj.weight', 'proj.bias'}
    assert not any(key.startswith('encoder') for key in state._metadata if key != 'encoder')
    # deepcopy (EMA) keeps the behaviour
    assert set(copy.deepcopy(parent).state_dict()) == set(state)

    fresh = Parent(seed=1)
    fresh_vae = copy.deepcopy(fresh.encoder.vae.state_dict())
    result = fresh.load_state_dict(state, strict=True)  # strict: nothing reported missing
    assert not result.missing_keys and not result.unexpected_keys
    torch.testing.assert_close(fresh.proj.weight, parent.proj.weight)
    for key, value in fresh.encoder.vae.state_dict().items():  # VAE untouched
        assert torch.equal(value, fresh_vae[key])
    # mmengine's loader (used by load_checkpoint / the runner) runs the same hooks
    mmengine_load_state_dict(Parent(seed=2), state, strict=True)
    # but a really missing trainable weight is still reported
    with pytest.raises(RuntimeError, match=r'proj\.bias'):
        mmengine_load_state_dict(Parent(seed=2), {'proj.weight': state['proj.weight']},
                                 strict=True)


def test_vae_weights_saved_and_loaded_with_save_weights():
    parent = Parent(seed=0, save_weights=True)
    state = parent.state_dict()
    vae_keys = [key for key in state if key.startswith('encoder.vae.')]
    assert len(vae_keys) == len(parent.encoder.vae.state_dict())
    fresh = Parent(seed=1, save_weights=True)
    x = frames()
    assert not torch.allclose(fresh.encoder.encode(x), parent.encoder.encode(x))
    with pytest.raises(RuntimeError, match='encoder.vae'):  # now they are required
        fresh.load_state_dict({k: v for k, v in state.items() if k not in vae_keys})
    fresh.load_state_dict(state, strict=True)
    torch.testing.assert_close(fresh.encoder.encode(x), parent.encoder.encode(x))


def test_vae_loads_a_save_pretrained_folder(tmp_path):
    source = tiny(seed=3)
    source.vae.save_pretrained(tmp_path / 'vae')
    source.vae.save_pretrained(tmp_path / 'sd' / 'vae')  # a full SD repository layout
    x = frames()
    for kwargs in (dict(pretrained=str(tmp_path / 'vae')),
                   dict(pretrained=str(tmp_path / 'sd'), subfolder='vae')):
        loaded = FrozenVAEEncoder(**kwargs)
        assert loaded.latent_shape(8) == (4, 4, 4)
        torch.testing.assert_close(loaded.encode(x), source.encode(x), rtol=0, atol=0)
        assert not any(p.requires_grad for p in loaded.parameters())


MESSAGE = 'could not load the VAE weights offline'


def test_vae_missing_weights_raise_one_clear_error(tmp_path):
    missing = tmp_path / 'no_such_dir'
    with pytest.raises(FileNotFoundError, match=MESSAGE) as info:
        FrozenVAEEncoder(pretrained=str(missing))
    text = str(info.value)
    assert f'pretrained={str(missing)!r}' in text and 'does not exist' in text
    assert ('huggingface-cli download stabilityai/sd-vae-ft-mse --local-dir '
            'checkpoints/sd-vae-ft-mse') in text
    assert 'model.encoder.pretrained=checkpoints/sd-vae-ft-mse' in text
    assert isinstance(info.value.__cause__, OSError)  # the diffusers error stays chained

    # a hub id that is not in the (empty) local cache: nothing is downloaded
    with pytest.raises(FileNotFoundError, match=MESSAGE) as info:
        FrozenVAEEncoder(pretrained=f'ebtvision-tests/vae-{uuid.uuid4().hex[:8]}')
    assert 'nor in the local Hugging Face cache' in str(info.value)

    # a folder with config.json but no weights
    tiny().vae.save_config(tmp_path / 'config_only')
    with pytest.raises(FileNotFoundError, match='holds no loadable AutoencoderKL'):
        FrozenVAEEncoder(pretrained=str(tmp_path / 'config_only'))


def test_vae_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match='exactly one of pretrained'):
        FrozenVAEEncoder(pretrained='stabilityai/sd-vae-ft-mse', vae_cfg=TINY_VAE)
    with pytest.raises(ValueError, match='exactly one of pretrained'):
        FrozenVAEEncoder(pretrained=None)
    with pytest.raises(ValueError, match="unknown vae_cfg 'xl'"):
        FrozenVAEEncoder(pretrained=None, vae_cfg='xl')
    with pytest.raises(ValueError, match='max_batch'):
        tiny(max_batch=0)
    encoder = tiny()
    for bad in (torch.zeros(1, 1, 3, 8, 8), torch.zeros(1, 4, 8, 8), torch.zeros(1, 3, 7, 8)):
        with pytest.raises(ValueError, match='FrozenVAEEncoder'):
            encoder.encode(bad)
    with pytest.raises(ValueError, match=r'\(N, 4, h, w\)'):
        encoder.decode(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match='downsampling factor 2'):
        encoder.latent_shape(9)


def test_sd_vae_architecture_sizes():
    # built on the meta device: the real SD-VAE shapes without allocating 84 M weights
    with torch.device('meta'):
        encoder = FrozenVAEEncoder(pretrained=None, vae_cfg='sd')
    assert encoder.latent_shape(224) == (4, 28, 28)  # 3136 dims per frame
    assert encoder.downsample_factor == 8
    assert 80e6 < sum(p.numel() for p in encoder.parameters()) < 90e6
    assert SD_VAE_ARCH['block_out_channels'] == (128, 256, 512, 512)


def test_encoders_build_from_the_registry():
    with DefaultScope.overwrite_default_scope('ebtvision'):
        pixel = MODELS.build(dict(type='PixelPatchEncoder', patch_size=2))
        vae = MODELS.build(dict(type='FrozenVAEEncoder', pretrained=None, vae_cfg=TINY_VAE,
                                max_batch=2))
    assert isinstance(pixel, PixelPatchEncoder) and pixel.latent_shape(8) == (12, 4, 4)
    assert isinstance(vae, FrozenVAEEncoder) and vae.max_batch == 2
    assert vae.encode(frames(3)).shape == (3, 4, 4, 4)
