# Fully sharded data parallel (FSDP) through MMEngine's FlexibleRunner: between iterations
# the parameters, and after each backward pass the gradients and the optimizer states, are
# split across the processes. _base_ this file next to a config's other bases and launch
# several processes, e.g.
#   bash tools/dist_train.sh CONFIG 8    (or torchrun ... tools/train.py CONFIG --launcher pytorch)
# Without a launcher the same config trains as one process (SingleDeviceStrategy).
# Checkpoints are gathered on rank 0 into one ordinary file (state_dict_cfg='full'), which
# tools/test.py, --resume and load_from read like any other.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        type='MMFullyShardedDataParallel',
        sharding_strategy='FULL_SHARD',
        # The whole model is one FSDP unit: an EBT's thinking loop needs it whole in every
        # iteration, and splitting an EBT into units is refused. The baselines (DiT,
        # Transformer++) can gather one block at a time instead:
        #   auto_wrap_policy=dict(type='block_wrap_policy'),
        use_orig_params=True),  # the optimizer sees the model's parameters (paramwise_cfg)
    state_dict_cfg='full')
