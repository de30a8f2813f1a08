# ImageNet-1k for linear probes (docs/method.md#linear-probes), at the resolution the COCO
# denoisers were trained at: short side 128, centre crop 128, pixels in [-1, 1].
# Expected layout (the common OpenMMLab one):
#   data/imagenet/train/<wnid>/*.JPEG
#   data/imagenet/val/<wnid>/*.JPEG   or   data/imagenet/val/*.JPEG + data/imagenet/meta/val.txt
# Features of the training split are extracted once without augmentation and cached.
data_root = 'data/imagenet'
img_size = 128

probe_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', size=img_size, keep_ratio=True),
    dict(type='CenterCrop', size=img_size),
    dict(type='NormalizeToSymmetric'),
    dict(type='PackClassifyInputs'),
]
probe_train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    # test_mode: unreadable images are dropped when the dataset is built.
    dataset=dict(type='ImageNetDataset', data_root=data_root, split='train', test_mode=True,
                 pipeline=probe_pipeline))
test_dataloader = dict(
    batch_size=256,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageNetDataset', data_root=data_root, split='val', test_mode=True,
                 pipeline=probe_pipeline))
test_evaluator = dict(type='AccuracyMetric', topk=(1, 5))

data_hint = ('Put ImageNet-1k under data/imagenet/: train/<wnid>/*.JPEG and val/ (class '
             'folders, or flat files with meta/val.txt).\n'
             'To try the probe without ImageNet: apt-get install dataset-fashion-mnist, then '
             'python tools/test.py configs/quickstart/linear_probe_fashion_mnist.py '
             'work_dirs/ebt_denoise_skimage/iter_600.pth')
