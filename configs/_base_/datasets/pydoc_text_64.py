# Real text that ships with Python: the help topics of `pydoc_data` (about 465k bytes),
# byte tokens, 64 per sample. The first 95 % of the text trains, the last 5 % validates
# (perplexity per byte, next-byte accuracy).
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
