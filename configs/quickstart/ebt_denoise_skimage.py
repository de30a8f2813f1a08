# Quick-start: a tiny EBT denoiser trained on crops of scikit-image's bundled photos,
# validated on four held-out photos at noise levels 0.1 (in distribution) and 0.2 (OOD).
# Runs offline on a 2-core CPU in about 3.5 minutes:
#   python tools/train.py configs/quickstart/ebt_denoise_skimage.py
_base_ = [
    '../_base_/models/sizes/ebt_denoise_4xs.py',
    '../_base_/datasets/skimage_denoise_64.py',
    '../_base_/schedules/quickstart_600it.py',
]

model = dict(
    backbone=dict(img_size=64, patch_size=8),
    thinker=dict(num_steps=1, alpha=3000.0, learnable_alpha=True))

# Also draw the thinking: every step, the per-patch energy map, energy vs step (at 0.2, OOD).
custom_hooks = [dict(type='DenoiseVisualizationHook', interval=200),
                dict(type='ThinkingVisualizationHook', level=0.2)]
