"""What the next-frame models share (NextFramePredictor), checked on the EBT and on
Transformer++: autoregressive rollout, with and without the cache, and input checks."""
import pytest
import torch
from conftest import NEXT_FRAME_LATENT as LATENT
from conftest import TINY_CAUSAL_ARCH as ARCH
from conftest import latent_clips as clips
from conftest import video_ebt as ebt
from conftest import video_samples as samples
from conftest import video_transformer_pp as transformer_pp

from ebtvision.models import TransformerPPNextFrame


def test_rollout_predicts_autoregressively():
    for model in (ebt().eval(), transformer_pp().eval()):
        context = clips()[:, :3]
        frames, energies = model.rollout(context, 3)
        assert frames.shape == (2, 3, *LATENT)
        first = model.predict_next_latents(context, seed_offset=0)[0][:, -1]
        torch.testing.assert_close(frames[:, 0], first)
        second = model.predict_next_latents(torch.cat([context, frames[:, :1]], 1),
                                            seed_offset=1)[0][:, -1]
        torch.testing.assert_close(frames[:, 1], second)
        assert (energies is None) == isinstance(model, TransformerPPNextFrame)


def test_cached_rollout_matches_rereading_the_sequence():
    for model, options in ((ebt().eval(), dict(num_candidates=2, num_steps=3)),
                           (ebt(head=dict(type='NextFrameHead', initial_candidate='last_frame'),
                                test_cfg=dict(candidate_noise=0.2)).eval(),
                            dict(num_candidates=3)),
                           (transformer_pp().eval(), {})):
        context = clips()[:, :3]
        frames, energies = model.rollout(context, 4, **options)
        frames_full, energies_full = model.rollout(context, 4, use_cache=False, **options)
        torch.testing.assert_close(frames, frames_full, rtol=1e-4, atol=1e-4)
        if energies is not None:
            torch.testing.assert_close(energies, energies_full, rtol=1e-4, atol=1e-4)


def test_input_checks():
    model = transformer_pp()
    mixed = samples(2)
    mixed[1].set_metainfo(dict(input_kind='pixels'))
    with pytest.raises(ValueError, match='mixes input kinds'):
        model(clips(), mixed, mode='loss')
    with pytest.raises(RuntimeError, match='need an encoder'):
        model(torch.zeros(2, 5, 3, 8, 8), None, mode='loss')
    with pytest.raises(ValueError, match='latent_shape'):
        TransformerPPNextFrame(backbone=dict(type='CausalTransformer', arch=ARCH),
                               head=dict(type='NextFrameHead'))
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(clips(), samples(2), mode='nope')


def test_rollout_with_a_step_token_backbone_rereads_and_matches():
    # Real frames attend to the step token, so nothing is cached; the cached rollout
    # path must still give what re-reading gives.
    model = ebt(backbone=dict(type='CausalEBT', arch=ARCH, max_steps=2,
                              step_condition='token')).eval()
    context = clips()[:, :3]
    frames, energies = model.rollout(context, 3, num_candidates=2)
    frames_full, energies_full = model.rollout(context, 3, use_cache=False, num_candidates=2)
    torch.testing.assert_close(frames, frames_full, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(energies, energies_full, rtol=1e-4, atol=1e-4)
