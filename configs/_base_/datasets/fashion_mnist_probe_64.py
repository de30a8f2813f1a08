# Fashion-MNIST (real labelled photos of clothes, 60k train / 10k test, 10 classes) for
# the linear-probe quick-start, from Debian's dataset-fashion-mnist package:
#   apt-get install dataset-fashion-mnist     # idx files in /usr/share/datasets/fashion-mnist
# The 28 px grey images are enlarged to the 64 px the quick-start denoisers were trained at.
data_root = '/usr/share/datasets/fashion-mnist'
img_size = 64

probe_pipeline = [
    dict(type='Resize', size=img_size, keep_ratio=True),
    dict(type='NormalizeToSymmetric'),
    dict(type='PackClassifyInputs'),
]
probe_train_dataloader = dict(
    batch_size=256,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    # The first 10k of the 60k training images keep the quick-start to minutes on a CPU;
    # drop `indices` for all of them.
    dataset=dict(type='IdxImageDataset', data_root=data_root, split='train', indices=10000,
                 pipeline=probe_pipeline))
test_dataloader = dict(
    batch_size=256,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='IdxImageDataset', data_root=data_root, split='test',
                 pipeline=probe_pipeline))
test_evaluator = dict(type='AccuracyMetric', topk=(1, 5))

data_hint = ('Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist (Debian), '
             'or set data_root to a folder with the four idx files '
             '(train-images-idx3-ubyte.gz, ...).')
