# Quick-start of the language branch on real text that ships with Python: the help
# topics of `pydoc_data` (about 465k bytes), byte tokens, 64 per sample. The first 95 %
# of the text trains, the last 5 % validates (perplexity per byte, next-byte accuracy).
# A tiny EBT (4xs) thinks 2 steps over next-byte logits. On a 2-core CPU:
#   python tools/train.py configs/quickstart/ebt_text_pydoc.py
_base_ = ['../_base_/schedules/text_quickstart.py']

seq_len = 64
_text = dict(type='PackedTextDataset', data_root='pydoc://', seq_len=seq_len)
train_dataloader = dict(
    batch_size=16, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(split_range=(0.0, 0.95), **_text))
val_dataloader = dict(
    batch_size=64, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(split_range=(0.95, 1.0), **_text))
test_dataloader = val_dataloader
val_evaluator = [dict(type='LanguageModelMetric'), dict(type='ThinkingMetric')]
test_evaluator = val_evaluator

model = dict(
    type='EBTLanguageModel',
    backbone=dict(type='CausalEBT', arch='4xs', max_steps=2),
    head=dict(type='TextHead', init_std=1.0),
    thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=500.0, learnable_alpha=True))

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'thinker.alpha': dict(lr_mult=1500.0, decay_mult=0.0)}))
