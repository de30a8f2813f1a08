# ImageNet-1k linear probe of an EBT denoiser (docs/method.md#linear-probes): the frozen
# backbone of a configs/ebt_coco_denoise.py checkpoint, features = mean of its final
# patch tokens (before the energy layer), a linear classifier on cached features.
#   python tools/test.py configs/linear_probe/ebt_imagenet_linear.py CHECKPOINT
# Paper: EBT 5.32 % top-1 / 13.2 % top-5 vs DiT 0.31 % / 1.36 %.
_base_ = [
    '../_base_/datasets/imagenet_probe_128.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='LinearProbe',
    data_preprocessor=dict(type='ImageDataPreprocessor'),
    # Must match the checkpoint's backbone (configs/ebt_coco_denoise.py).
    backbone=dict(type='BidirectionalEBT', arch='large', img_size=128, patch_size=16,
                  mlp_ratio=1.0),
    num_classes=1000)

# Linear classifier on frozen, standardised features: SGD with momentum, cosine schedule.
test_cfg = dict(
    type='LinearProbeLoop',
    train_dataloader={{_base_.probe_train_dataloader}},
    classifier=dict(optimizer='sgd', lr=0.1, momentum=0.9, weight_decay=0.0, epochs=90,
                    batch_size=256, normalize='standardize', lr_schedule='cosine', seed=0))
