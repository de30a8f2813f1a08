# Linear-probe quick-start: the frozen backbone of the EBT denoising quick-start
# (configs/quickstart/ebt_denoise_skimage.py: 4xs, 64 px, patch 8), a linear classifier on
# its mean final patch tokens, on Fashion-MNIST (offline: apt-get install
# dataset-fashion-mnist). On a 2-core CPU:
#   python tools/train.py configs/quickstart/ebt_denoise_skimage.py
#   python tools/test.py configs/quickstart/linear_probe_fashion_mnist.py \
#       work_dirs/ebt_denoise_skimage/iter_600.pth
#   python tools/test.py configs/quickstart/linear_probe_fashion_mnist.py none  # random init
# DiT: configs/quickstart/linear_probe_fashion_mnist_dit.py.
_base_ = [
    '../_base_/datasets/fashion_mnist_probe_64.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='LinearProbe',
    data_preprocessor=dict(type='ImageDataPreprocessor'),
    backbone=dict(type='BidirectionalEBT', arch='4xs', img_size=64, patch_size=8),
    num_classes=10)

# Small features (width 128): standardised, SGD with momentum, 30 epochs, cosine schedule.
test_cfg = dict(
    type='LinearProbeLoop',
    train_dataloader={{_base_.probe_train_dataloader}},
    classifier=dict(optimizer='sgd', lr=0.1, momentum=0.9, weight_decay=0.0, epochs=30,
                    batch_size=256, normalize='standardize', lr_schedule='cosine', seed=0))
