"""Drawing an EBT's uncertainty: energy heat maps, overlays and energy-vs-step curves.

Everything takes and returns numpy arrays (uint8 RGB ``(H, W, 3)`` images); plots are drawn
on a private matplotlib ``Figure`` (no pyplot global state, safe in hooks and servers).
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

#: Colour map of energy heat maps: dark = low energy (plausible), bright = high.
ENERGY_COLORMAP = 'inferno'


def energy_heatmap(energy_map: np.ndarray, size: Optional[Tuple[int, int]] = None,
                   vmin: Optional[float] = None, vmax: Optional[float] = None) -> np.ndarray:
    """Colour a 2-D energy map; ``size=(H, W)`` enlarges it with nearest neighbours.

    Nearest-neighbour enlarging keeps each patch a visible block. The colour range is
    ``[vmin, vmax]`` (default: the map's own range).
    """
    from matplotlib import colormaps
    values = np.asarray(energy_map, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f'energy_map must be 2-D, got shape {values.shape}')
    low = float(values.min()) if vmin is None else float(vmin)
    high = float(values.max()) if vmax is None else float(vmax)
    scaled = np.clip((values - low) / (high - low), 0, 1) if high > low else \
        np.zeros_like(values)
    colored = (colormaps[ENERGY_COLORMAP](scaled)[..., :3] * 255 + 0.5).astype(np.uint8)
    if size is not None and tuple(size) != colored.shape[:2]:
        colored = cv2.resize(colored, (int(size[1]), int(size[0])),
                             interpolation=cv2.INTER_NEAREST)
    return colored


def overlay_heatmap(image: np.ndarray, energy_map: np.ndarray, alpha: float = 0.5,
                    vmin: Optional[float] = None, vmax: Optional[float] = None) -> np.ndarray:
    """Blend an energy heat map, scaled to the image, over a uint8 RGB (or gray) image."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be uint8 (H, W[, 3]), got {image.dtype} {image.shape}')
    if not 0 <= alpha <= 1:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    heat = energy_heatmap(energy_map, image.shape[:2], vmin, vmax)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * heat.astype(np.float32)
    return (blended + 0.5).astype(np.uint8)


def energy_curve_image(energies: np.ndarray,
                       labels: Optional[Sequence[str]] = None,
                       title: str = 'energy while thinking',
                       xlabel: str = 'thinking step (0 = start)',
                       size: Tuple[int, int] = (300, 420)) -> np.ndarray:
    """Plot energy-vs-step curves into a uint8 RGB image of ``size=(H, W)`` pixels.

    Args:
        energies: ``(S + 1,)`` one curve, or ``(N, S + 1)`` N curves; entry 0 is the start.
        labels: One legend entry per curve.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    curves = np.atleast_2d(np.asarray(energies, dtype=np.float64))
    if labels is not None and len(labels) != len(curves):
        raise ValueError(f'{len(labels)} labels for {len(curves)} curves')
    dpi = 100
    figure = Figure(figsize=(size[1] / dpi, size[0] / dpi), dpi=dpi, layout='constrained')
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    steps = np.arange(curves.shape[1])
    for index, curve in enumerate(curves):
        axes.plot(steps, curve, marker='o', markersize=3,
                  label=None if labels is None else labels[index])
    axes.set_xlabel(xlabel)
    axes.set_ylabel('energy')
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    if labels is not None:
        axes.legend(fontsize=7)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])
