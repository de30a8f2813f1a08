# Data-parallel training through MMEngine's FlexibleRunner: every process holds the whole
# model, gradients are averaged after each backward pass. _base_ this file next to a
# config's other bases, then launch several processes, e.g.
#   bash tools/dist_train.sh CONFIG 8    (or torchrun ... tools/train.py CONFIG --launcher pytorch)
# Without a launcher the same config trains as one process (SingleDeviceStrategy).
# ebtvision's DDPStrategy is MMEngine's with CPU support (gloo, no device ids).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DDPStrategy',
    model_wrapper=dict(type='MMDistributedDataParallel', broadcast_buffers=False))
