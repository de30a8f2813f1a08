"""Pure image-quality functions used by the denoising metrics (and top-k accuracy).

All functions take ``(B, C, H, W)`` or ``(C, H, W)`` float tensors and return one
value per image, shape ``(B,)`` (``(1,)`` for a single ``(C, H, W)`` image), except
:func:`psnr_batch`, which returns one value for the whole batch.
PSNR, MSE and SSIM work on the scale given by ``data_range`` (255 by default, i.e.
images first mapped with :func:`to_uint8_scale`); LPIPS works on ``[-1, 1]``
inputs, which is the ``lpips`` package's own convention.

Nothing here downloads weights: LPIPS needs a local copy of the torchvision
backbone checkpoint (see :func:`build_lpips`).
"""
import os
import warnings
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

__all__ = [
    'to_uint8_scale', 'mse', 'psnr', 'psnr_batch', 'ssim', 'build_lpips', 'LPIPSScorer',
    'LPIPS_BACKBONE_FILES', 'topk_correct', 'topk_accuracy'
]

#: torchvision checkpoint file name of each LPIPS backbone (``net`` argument).
LPIPS_BACKBONE_FILES: Dict[str, str] = {
    'alex': 'alexnet-owt-7be5be79.pth',
    'vgg': 'vgg16-397923af.pth',
    'squeeze': 'squeezenet1_1-b8a52dc0.pth',
}


def _check_pair(pred: Tensor, target: Tensor) -> Tuple[Tensor, Tensor]:
    """Validate a prediction/target pair and bring both to ``(B, C, H, W)`` float.

    Args:
        pred: ``(B, C, H, W)`` or ``(C, H, W)`` tensor.
        target: Tensor of the same shape as ``pred``.

    Returns:
        Both tensors, batched and floating point.

    Raises:
        ValueError: If the shapes differ or are not 3-D/4-D.
    """
    if pred.shape != target.shape:
        raise ValueError(f'pred and target must have the same shape, got pred '
                         f'{tuple(pred.shape)} and target {tuple(target.shape)}.')
    if pred.dim() not in (3, 4):
        raise ValueError('Expected images of shape (B, C, H, W) or (C, H, W), got '
                         f'{tuple(pred.shape)}.')
    if pred.dim() == 3:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    # Integer images (e.g. uint8) would overflow when squared.
    if not pred.is_floating_point():
        pred = pred.float()
    if not target.is_floating_point():
        target = target.float()
    return pred, target


def to_uint8_scale(x: Tensor, quantize: bool = False) -> Tensor:
    """Map images from ``[-1, 1]`` to the ``[0, 255]`` scale.

    Computes ``(x + 1) * 127.5`` clamped to ``[0, 255]``. The result stays a float
    tensor so that metrics are not biased by rounding unless asked for.

    Args:
        x: Tensor in ``[-1, 1]`` (values outside are clamped), any shape.
        quantize: If True, round to integer levels as if the image were saved
            as 8-bit, still returned as float.

    Returns:
        Float tensor of the same shape in ``[0, 255]``.
    """
    if not x.is_floating_point():
        x = x.float()
    out = ((x + 1.0) * 127.5).clamp(0.0, 255.0)
    if quantize:
        out = out.round()
    return out


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of each image, averaged over channels and pixels.

    Args:
        pred: ``(B, C, H, W)`` or ``(C, H, W)`` prediction.
        target: Reference of the same shape and scale.

    Returns:
        ``(B,)`` tensor of per-image MSE, on the squared scale of the inputs.

    Raises:
        ValueError: If the shapes differ or are not 3-D/4-D.
    """
    pred, target = _check_pair(pred, target)
    return (pred - target).pow(2).flatten(1).mean(dim=1)


def psnr(pred: Tensor, target: Tensor, data_range: float = 255.0) -> Tensor:
    """Peak signal-to-noise ratio of each image, in dB.

    ``10 * log10(data_range ** 2 / mse)`` per image. Identical images have zero
    MSE and give ``+inf``; this function reports that as is, callers that average
    (e.g. :class:`~ebtvision.evaluation.PSNRMetric`) cap it first.

    Args:
        pred: ``(B, C, H, W)`` or ``(C, H, W)`` prediction.
        target: Reference of the same shape, on the scale ``[0, data_range]``.
        data_range: Peak value of the pixel scale (255 for 8-bit images).

    Returns:
        ``(B,)`` tensor of per-image PSNR (``inf`` where ``pred == target``).

    Raises:
        ValueError: If the shapes differ or are not 3-D/4-D.
    """
    err = mse(pred, target)
    # Division by zero gives +inf, which log10 keeps: the documented behaviour.
    return 10.0 * torch.log10(data_range**2 / err)



def psnr_batch(pred: Tensor, target: Tensor, data_range: float = 255.0) -> Tensor:
    """PSNR of a whole batch, in dB: one value from the MSE pooled over its images.

    ``10 * log10(data_range ** 2 / mean(mse))``, where the mean runs over the
    images of the batch (all the same size, so it is also the MSE over every
    pixel of the batch). This is the figure the EBT paper's code logs for each
    test batch. Because ``log`` is concave, it is never above the mean of
    :func:`psnr` over the same images, and equal to it only when every image
    has the same MSE; a few easy images raise the per-image mean but barely move
    this one. Like :func:`psnr`, inputs are expected on ``[0, data_range]``
    (clamp first) and a batch with zero error gives ``+inf``.

    Args:
        pred: ``(B, C, H, W)`` or ``(C, H, W)`` prediction.
        target: Reference of the same shape, on the scale ``[0, data_range]``.
        data_range: Peak value of the pixel scale (255 for 8-bit images).

    Returns:
        0-dim tensor, the batch PSNR.

    Raises:
        ValueError: If the shapes differ or are not 3-D/4-D.
    """
    err = mse(pred, target).mean()
    return 10.0 * torch.log10(data_range**2 / err)

def ssim(pred: Tensor,
         target: Tensor,
         data_range: float = 255.0,
         window_size: int = 11,
         padding: str = 'valid') -> Tensor:
    """Mean structural similarity of each image (Gaussian window, sigma 1.5).

    Wraps :func:`kornia.metrics.ssim` (constants ``K1=0.01``, ``K2=0.03``,
    population covariances) and averages the SSIM map over channels and pixels.
    With the default ``padding='valid'`` the border of ``window_size // 2`` pixels
    is left out, which matches ``skimage.metrics.structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` and the
    original MATLAB implementation.

    Args:
        pred: ``(B, C, H, W)`` or ``(C, H, W)`` prediction.
        target: Reference of the same shape, on the scale ``[0, data_range]``.
        data_range: Peak value of the pixel scale (255 for 8-bit images).
        window_size: Number of taps of the Gaussian window (odd).
        padding: ``'valid'`` (default) or ``'same'`` (reflect padding, keeps the
            border in the average).

    Returns:
        ``(B,)`` tensor of per-image mean SSIM (1 for identical images).

    Raises:
        ValueError: If the shapes differ, are not 3-D/4-D, or the images are
            smaller than the window with ``padding='valid'``.
    """
    import kornia.metrics  # deferred: kornia is only needed for SSIM

    pred, target = _check_pair(pred, target)
    height, width = pred.shape[-2:]
    if padding == 'valid' and (height < window_size or width < window_size):
        raise ValueError(f"SSIM with padding='valid' needs images of at least "
                         f'{window_size}x{window_size} pixels, got {height}x{width}; '
                         "use a smaller window_size or padding='same'.")
    # eps=0 keeps the reference formula; c1, c2 > 0 already avoid division by zero.
    ssim_map = kornia.metrics.ssim(
        pred, target, window_size, max_val=float(data_range), eps=0.0, padding=padding)
    return ssim_map.flatten(1).mean(dim=1)


def _find_backbone_weights(net: str, backbone_weights: Optional[str]) -> str:
    """Resolve the local torchvision checkpoint of an LPIPS backbone.

    Args:
        net: LPIPS backbone name, a key of :data:`LPIPS_BACKBONE_FILES`.
        backbone_weights: Path given by the user, or None to look in the torch
            hub cache (``torch.hub.get_dir()/checkpoints``).

    Returns:
        Path of an existing checkpoint file.

    Raises:
        FileNotFoundError: If no checkpoint file can be found.
    """
    file_name = LPIPS_BACKBONE_FILES[net]
    if backbone_weights is not None:
        path = os.path.expanduser(str(backbone_weights))
        if os.path.isfile(path):
            return path
        reason = f'backbone_weights={str(backbone_weights)!r} does not exist'
    else:
        cached = os.path.join(torch.hub.get_dir(), 'checkpoints', file_name)
        if os.path.isfile(cached):
            return cached
        reason = f'no backbone_weights given and {cached!r} does not exist'
    raise FileNotFoundError(
        f'LPIPS (net={net!r}) needs the ImageNet weights of its torchvision backbone, '
        f'the file {file_name!r}, but {reason}. Nothing is downloaded at run time: '
        f'copy that file to this machine (e.g. from https://download.pytorch.org/models/'
        f'{file_name}) and pass its path, e.g. in a config '
        f"dict(type='LPIPSMetric', net={net!r}, backbone_weights='/path/{file_name}'), "
        f'or put it in the torch hub cache at '
        f'{os.path.join(torch.hub.get_dir(), "checkpoints", file_name)}.')


def _load_backbone(lpips_model: nn.Module, path: str) -> None:
    """Load a torchvision ``features`` checkpoint into LPIPS' sliced backbone.

    ``lpips.pretrained_networks`` splits torchvision's ``features`` Sequential into
    ``slice1..sliceN`` and keeps each layer under its original index, so
    ``features.<i>.<param>`` maps to ``slice<k>.<i>.<param>`` of the slice that
    holds layer ``i``.

    Args:
        lpips_model: An ``lpips.LPIPS`` instance.
        path: Local torchvision state_dict file.

    Raises:
        ValueError: If the checkpoint does not fit the backbone.
    """
    state = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    backbone = lpips_model.net
    layer_to_slice = {}
    for slice_idx in range(1, backbone.N_slices + 1):
        for layer_idx, _ in getattr(backbone, f'slice{slice_idx}').named_children():
            layer_to_slice[layer_idx] = f'slice{slice_idx}'

    mapped = {}
    for key, value in state.items():
        # Accept both full-model checkpoints and ones saved with a 'module.' wrapper.
        key = key[len('module.'):] if key.startswith('module.') else key
        if not key.startswith('features.'):
            continue  # classifier weights are not part of LPIPS
        layer_idx, rest = key[len('features.'):].split('.', 1)
        if layer_idx in layer_to_slice:
            mapped[f'{layer_to_slice[layer_idx]}.{layer_idx}.{rest}'] = value
    try:
        backbone.load_state_dict(mapped, strict=True)
    except RuntimeError as err:
        raise ValueError(f'{path!r} does not match the LPIPS {lpips_model.pnet_type!r} '
                         f'backbone (expected a torchvision state_dict): {err}') from err


def build_lpips(net: str = 'alex', backbone_weights: Optional[str] = None) -> nn.Module:
    """Build an ``lpips.LPIPS`` network without downloading anything.

    The linear calibration layers ship inside the ``lpips`` package; the backbone is
    created randomly initialised and then filled from a local torchvision checkpoint
    (``alexnet-owt-7be5be79.pth`` for ``'alex'``, ``vgg16-397923af.pth`` for
    ``'vgg'``, ``squeezenet1_1-b8a52dc0.pth`` for ``'squeeze'``).

    Args:
        net: Backbone, ``'alex'``, ``'vgg'`` or ``'squeeze'``.
        backbone_weights: Path of the torchvision checkpoint. If None, the file
            is looked up in ``torch.hub.get_dir()/checkpoints``.

    Returns:
        The ``lpips.LPIPS`` module in eval mode, on CPU.

    Raises:
        ValueError: If ``net`` is unknown or the checkpoint does not fit.
        FileNotFoundError: If the backbone checkpoint cannot be found.
    """
    if net == 'vgg16':
        net = 'vgg'
    if net not in LPIPS_BACKBONE_FILES:
        raise ValueError(f'Unknown LPIPS net {net!r}, choose one of '
                         f'{sorted(LPIPS_BACKBONE_FILES)}.')
    # Resolve first so a missing file fails before the slow lpips import.
    path = _find_backbone_weights(net, backbone_weights)

    # Deferred: importing lpips is slow and only LPIPS needs it (the [lpips] extra).
    from ebtvision.utils.optional import require
    lpips = require('lpips', 'the LPIPS metric (LPIPSMetric, build_lpips)')

    with warnings.catch_warnings():
        # torchvision warns about lpips' legacy `pretrained=` argument.
        warnings.simplefilter('ignore', UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    _load_backbone(model, path)
    return model.eval()


class LPIPSScorer(nn.Module):
    """Per-image LPIPS distance with locally loaded weights.

    Args:
        net: Backbone, ``'alex'``, ``'vgg'`` or ``'squeeze'``.
        backbone_weights: Local torchvision checkpoint, see :func:`build_lpips`.

    Example:
        >>> scorer = LPIPSScorer('alex', '/ckpts/alexnet-owt-7be5be79.pth')
        >>> scorer(pred, target)  # both in [-1, 1], (B, 3, H, W) -> (B,)
    """

    def __init__(self, net: str = 'alex', backbone_weights: Optional[str] = None) -> None:
        super().__init__()
        self.model = build_lpips(net, backbone_weights)
        self.model.requires_grad_(False)

    @torch.no_grad()
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute LPIPS of each image pair.

        Args:
            pred: ``(B, C, H, W)`` or ``(C, H, W)`` images in ``[-1, 1]``, with
                ``C`` 3 (RGB) or 1 (repeated to RGB).
            target: Images of the same shape in ``[-1, 1]``.

        Returns:
            ``(B,)`` tensor of distances (0 for identical images), on the
            model's device.

        Raises:
            ValueError: If the shapes differ or are not 3-D/4-D.
        """
        pred, target = _check_pair(pred, target)
        if pred.shape[1] == 1:
            # The backbones are RGB networks: score grayscale as gray RGB.
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        device = next(self.model.parameters()).device
        dist = self.model(pred.to(device), target.to(device))
        return dist.flatten(1).mean(dim=1)


def topk_correct(scores: Tensor, labels: Tensor,
                 topk: Sequence[int] = (1, 5)) -> Dict[int, Tensor]:
    """Whether each label is among its row's k highest scores.

    A label counts as correct at k when its index is among the k indices returned by
    ``torch.topk`` (ties between equal scores are broken the way ``torch.topk`` breaks
    them). A ``k`` larger than the number of classes C is clamped to C, so every label
    is then correct.

    Args:
        scores: (N, C) class scores (probabilities or logits).
        labels: (N,) integer class indices.
        topk: The k values, each >= 1.

    Returns:
        ``{k: (N,) bool tensor}``.

    Raises:
        ValueError: Shapes do not match or a k is not positive.
    """
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f'expected scores (N, C) and labels (N,), got {tuple(scores.shape)} '
                         f'and {tuple(labels.shape)}')
    if not topk or min(topk) < 1:
        raise ValueError(f'topk must be positive integers, got {tuple(topk)}')
    num_classes = scores.shape[1]
    # One topk call for the largest k; smaller k are prefixes of its sorted indices.
    ranked = scores.topk(min(max(topk), num_classes), dim=1).indices
    hits = ranked == labels.to(ranked.device).long()[:, None]
    return {int(k): hits[:, :min(int(k), num_classes)].any(dim=1) for k in topk}


def topk_accuracy(scores: Tensor, labels: Tensor,
                  topk: Sequence[int] = (1, 5)) -> Dict[int, float]:
    """Top-k accuracy in percent for each k (see :func:`topk_correct` for ties and k > C).

    Args:
        scores: (N, C) class scores.
        labels: (N,) integer class indices.
        topk: The k values.

    Returns:
        ``{k: percent}``; 0 for every k when N is 0.
    """
    return {k: 100.0 * float(hit.float().mean()) if hit.numel() else 0.0
            for k, hit in topk_correct(scores, labels, topk).items()}
