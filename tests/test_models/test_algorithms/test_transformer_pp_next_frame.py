"""Next-frame Transformer++: the masked loss of its predictions and its backbone type."""
import pytest
import torch
import torch.nn.functional as F
from conftest import NEXT_FRAME_LATENT as LATENT
from conftest import TINY_CAUSAL_ARCH as ARCH
from conftest import latent_clips as clips
from conftest import video_samples as samples
from conftest import video_transformer_pp as transformer_pp

from ebtvision.models import TransformerPPNextFrame


def test_transformer_pp_loss_is_the_masked_smooth_l1_of_its_predictions():
    model = transformer_pp()
    latents = clips()
    data = samples(2, padded=[2])
    loss = model(latents, data, mode='loss')
    pred = model.predict_next_latents(latents[:, :-1])[0]
    errors = F.smooth_l1_loss(pred, latents[:, 1:], reduction='none').flatten(2).mean(-1)
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[0, 2:] = False  # two padded frames at the end of clip 0
    torch.testing.assert_close(loss['loss'], errors[mask].mean())
    # Changing a padded target changes nothing.
    changed = latents.clone()
    changed[0, -1] += 5
    torch.testing.assert_close(model(changed, data, mode='loss')['loss'], loss['loss'])
    with pytest.raises(TypeError, match='CausalTransformer'):
        TransformerPPNextFrame(backbone=dict(type='CausalEBT', arch=ARCH),
                               head=dict(type='NextFrameHead'), latent_shape=LATENT)
