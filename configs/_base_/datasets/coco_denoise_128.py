# COCO 2014 images at 128 x 128, pixels in [-1, 1] (docs/method.md#image-denoising).
# Expected layout: data/coco/train2014/*.jpg and data/coco/val2014/*.jpg
# (any folder of images works: point data_root at it).
data_root = 'data/coco'
img_size = 128

# Training images are centre-cropped and never flipped, as in the reference's image
# training (its ADM-style centre crop; it left flips out). Its resize is a box-filter
# halving then bicubic; ours is a single resize of the short side.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', size=img_size, keep_ratio=True),
    dict(type='CenterCrop', size=img_size),
    dict(type='NormalizeToSymmetric'),
    dict(type='PackDenoiseInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', size=img_size, keep_ratio=True),
    dict(type='CenterCrop', size=img_size),
    dict(type='NormalizeToSymmetric'),
    dict(type='PackDenoiseInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root=f'{data_root}/train2014',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    # A fixed 2k-image subset keeps validation cheap; drop `indices` for all 40k.
    dataset=dict(type='ImageFolderDataset', data_root=f'{data_root}/val2014', indices=2000,
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageFolderDataset', data_root=f'{data_root}/val2014',
                 test_mode=True, pipeline=test_pipeline))

# ThinkingMetric: EBTs' mean final energy and steps used per level (nothing for the DiT).
val_evaluator = [dict(type='PSNRMetric'), dict(type='SSIMMetric'), dict(type='ThinkingMetric')]
test_evaluator = val_evaluator

data_hint = ('Put the COCO 2014 images under data/coco/train2014/ and data/coco/val2014/ '
             '(or set train_dataloader.dataset.data_root to any image folder).\n'
             'To try the framework without data: '
             'python tools/train.py configs/quickstart/ebt_denoise_skimage.py')
