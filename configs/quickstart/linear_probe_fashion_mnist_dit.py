# The Fashion-MNIST linear probe of the DiT denoising quick-start
# (configs/quickstart/dit_denoise_skimage.py), fed t = 0 as in the paper:
#   python tools/test.py configs/quickstart/linear_probe_fashion_mnist_dit.py \
#       work_dirs/dit_denoise_skimage/iter_600.pth
_base_ = ['linear_probe_fashion_mnist.py']

model = dict(
    backbone=dict(type='DiT', arch='4xs', img_size=64, patch_size=8),
    feature_kwargs=dict(t=0))
