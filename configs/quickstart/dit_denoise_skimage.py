# Quick-start DiT baseline with the same backbone, data and budget as
# ebt_denoise_skimage.py, for a like-for-like comparison (100 DDIM steps at evaluation):
#   python tools/train.py configs/quickstart/dit_denoise_skimage.py
_base_ = [
    '../_base_/models/sizes/dit_denoise_4xs.py',
    '../_base_/datasets/skimage_denoise_64.py',
    '../_base_/schedules/quickstart_600it.py',
]

model = dict(backbone=dict(img_size=64, patch_size=8))
