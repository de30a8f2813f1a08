"""NextFrameInferencer: clips read with the config's validation settings, rollouts equal
to the model's own ``rollout``; options checked by the shared validator; EBT-only
options refused for Transformer++."""
import numpy as np
import pytest
import torch
from conftest import TINY_VIDEO_MODEL, write_video
from mmengine.config import Config

from ebtvision.apis import (ModelLoadError, NextFrameInferencer, NextFrameResult, VideoClip,
                            VideoClipError)
from ebtvision.apis.options import ThinkingOptionError
from ebtvision.models.heads import frame_errors
from ebtvision.visualization import to_uint8_hwc

CONFIG = TINY_VIDEO_MODEL + """
val_dataloader = dict(dataset=dict(type='VideoFolderDataset', data_root='{root}', clip_len=5,
                                   time_between_frames=0.2, time_range=(0.5, 1),
                                   pipeline=_pipeline, test_mode=True))
"""


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Tiny EBT / Transformer++ checkpoints and a 4 s video at 10 fps (20 frames every
    0.2 s, the last 10 in the validation range)."""
    from ebtvision.registry import MODELS
    from ebtvision.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    root = tmp_path_factory.mktemp('next_frame_inferencer')
    write_video(str(root / 'videos' / 'clip.mp4'), 40, fps=10.0, size=(32, 48))
    paths = {}
    for kind in ('ebt', 'tpp', 'latents'):
        config = root / f'{kind}.py'
        config.write_text(CONFIG.format(kind=kind, root=root / 'videos'))
        torch.manual_seed(0)
        model = MODELS.build(Config.fromfile(str(config)).model)
        checkpoint = root / f'{kind}.pth'
        torch.save({'state_dict': model.state_dict()}, checkpoint)
        paths[kind] = (str(config), str(checkpoint))
    paths['video'] = str(root / 'videos' / 'clip.mp4')
    return paths


@pytest.fixture(scope='module')
def ebt(models):
    return NextFrameInferencer(*models['ebt'])


@pytest.fixture(scope='module')
def tpp(models):
    return NextFrameInferencer(*models['tpp'])


def direct_rollout(model, clip: VideoClip, **options):
    """The model's own rollout of the clip: ``(predicted, energies, decoded, latents)``."""
    batch = model.data_preprocessor(dict(inputs=[clip.inputs], data_samples=[clip.data_sample]),
                                    False)
    with torch.no_grad():
        latents = model.encode_inputs(batch['inputs'], batch['data_samples'])
        predicted, energies = model.rollout(latents[:, :clip.context], clip.frames, **options)
        decoded = model.decode_latents(predicted)
    return predicted, energies, decoded, latents


def test_clips_follow_the_validation_settings(ebt, models):
    clip = ebt.read_clip(models['video'])
    # Default context: clip_len - 1 = 4; 10 frames held out, so 6 (not 8) are predicted.
    assert (clip.context, clip.frames, clip.available, clip.trained_context) == (4, 6, 10, 4)
    assert clip.inputs.shape == (10, 3, 16, 16) and clip.inputs.dtype == torch.uint8
    assert clip.start_fraction == 0.5 and clip.time_between_frames == 0.2
    assert clip.times[0] == pytest.approx(2.0) and len(clip.times) == 10
    assert np.diff(clip.times) == pytest.approx([0.2] * 9)
    assert ebt.read_clip(context=2, frames=3, start_fraction=0).times[0] == pytest.approx(0.0)
    with pytest.raises(VideoClipError, match=r'too short for context 4 \+ frames 7 = 11 '
                       'frames.*10 of them from start_fraction 0.5 on'):
        ebt.read_clip(context=4, frames=7)
    with pytest.raises(VideoClipError, match='does not exist'):
        ebt.read_clip('missing.mp4')
    with pytest.raises(ThinkingOptionError, match='frames must be an integer >= 1'):
        ebt.read_clip(frames=0)


def test_ebt_rollout_is_the_models_own(ebt):
    assert ebt.is_ebt and ebt.default_steps == 2
    clip = ebt.read_clip(context=4, frames=3)
    result = ebt(clip, num_steps=3, num_candidates=2)
    assert isinstance(result, NextFrameResult)
    predicted, energies, decoded, latents = direct_rollout(ebt.model, clip, num_steps=3,
                                                           num_candidates=2)
    torch.testing.assert_close(result.latents, predicted[0], rtol=0, atol=1e-6)
    assert result.energies == pytest.approx(energies[0].tolist(), abs=1e-6)
    assert (result.context, result.frames, result.num_steps, result.num_candidates) == (4, 3, 3, 2)
    assert len(result.truth) == 7 and len(result.prediction) == 3
    for frame, expected in zip(result.prediction, decoded[0]):
        np.testing.assert_array_equal(frame, to_uint8_hwc(expected))
    for frame, real in zip(result.truth, clip.inputs.permute(0, 2, 3, 1).numpy()):
        np.testing.assert_array_equal(frame, real)
    # Errors: each prediction against the real frame it predicts, and the last context
    # frame repeated against the same frames.
    future = latents[:, 4:]
    assert result.errors == pytest.approx(
        frame_errors(predicted, future, 'smooth_l1')[0].tolist(), abs=1e-6)
    assert result.copy_last_errors == pytest.approx(frame_errors(
        latents[:, 3:4].expand_as(future), future, 'smooth_l1')[0].tolist(), abs=1e-6)
    # Without options: the config's settings; a video path reads the default clip.
    plain = ebt(clip)
    predicted, energies, _, _ = direct_rollout(ebt.model, clip)
    torch.testing.assert_close(plain.latents, predicted[0], rtol=0, atol=1e-6)
    assert (plain.num_steps, plain.num_candidates) == (2, 1)
    by_path = ebt(clip.video)
    assert by_path.frames == 6 and len(by_path.truth) == 10


def test_transformer_pp_rollout_has_no_energies(tpp):
    assert not tpp.is_ebt and tpp.default_steps is None
    clip = tpp.read_clip(context=3, frames=2)
    result = tpp(clip, num_candidates=1, tolerance=0)  # neutral values are fine
    predicted, energies, _, _ = direct_rollout(tpp.model, clip)
    assert energies is None and result.energies is None
    torch.testing.assert_close(result.latents, predicted[0], rtol=0, atol=1e-6)
    assert result.num_steps is None and result.num_candidates == 1


@pytest.mark.parametrize('options, named', [
    (dict(num_candidates=2), 'num_candidates applies'),
    (dict(num_steps=3, alpha=0.5), 'num_steps, alpha apply'),
    (dict(tolerance=0.1), 'tolerance applies'),
])
def test_ebt_only_options_are_refused_for_transformer_pp(tpp, options, named):
    with pytest.raises(ValueError, match=f'{named} to EBTs; TransformerPPNextFrame predicts '
                       'each frame in one pass'):
        tpp(tpp.read_clip(context=2, frames=1), **options)


@pytest.mark.parametrize('options, message', [
    (dict(num_steps=0), 'argument.num_steps must be an integer >= 1, got 0'),
    (dict(num_candidates=-2), 'argument.num_candidates must be an integer >= 1'),
    (dict(alpha=0), 'argument.alpha must be > 0'),
    (dict(tolerance=float('inf')), 'argument.tolerance must be finite'),
])
def test_bad_options_get_the_validators_error(ebt, tpp, options, message):
    for inferencer in (ebt, tpp):
        with pytest.raises(ThinkingOptionError, match=message):
            inferencer(inferencer.read_clip(context=2, frames=1), **options)


def test_model_errors(models, tmp_path):
    assert NextFrameInferencer.model_class(models['ebt'][0]).__name__ == 'EBTNextFrame'
    with pytest.raises(ModelLoadError, match='cannot decode latents back to frames'):
        NextFrameInferencer(*models['latents'])
    with pytest.raises(ModelLoadError, match='does not fit'):
        NextFrameInferencer(models['tpp'][0], models['ebt'][1])
    text = tmp_path / 'text.py'
    text.write_text("model = dict(type='TransformerPPLanguageModel', backbone=dict("
                    "type='CausalTransformer', arch=dict(depth=1, num_heads=2, embed_dims=16)))\n")
    with pytest.raises(ModelLoadError, match="'TransformerPPLanguageModel' is not a next-frame"):
        NextFrameInferencer.model_class(str(text))
    with pytest.raises(ModelLoadError, match='builds a TransformerPPLanguageModel, not a '
                       r'next-frame model \(EBTNextFrame, TransformerPPNextFrame\)'):
        NextFrameInferencer(str(text), None)
