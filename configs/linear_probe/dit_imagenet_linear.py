# ImageNet-1k linear probe of a DiT denoiser (docs/method.md#linear-probes): the frozen
# backbone of a configs/dit_coco_denoise.py checkpoint fed t = 0 (as in the paper),
# features = mean of its final patch tokens (before the output layer); otherwise the
# same data and classifier as configs/linear_probe/ebt_imagenet_linear.py.
#   python tools/test.py configs/linear_probe/dit_imagenet_linear.py CHECKPOINT
_base_ = ['ebt_imagenet_linear.py']

model = dict(
    # Must match the checkpoint's backbone (configs/dit_coco_denoise.py).
    backbone=dict(type='DiT', arch='large', img_size=128, patch_size=16, mlp_ratio=1.0,
                  learn_sigma=True),
    feature_kwargs=dict(t=0))
