# Dyck-2 completion ("prefix=closing", byte tokens, 48 per sample), generated offline.
# Train / validation: prefixes of 4-16 brackets nested at most 4 deep. Test (out of
# distribution): longer (17-24) and deeper (up to 8) prefixes, never seen in training.
seq_len = 48
_common = dict(type='DyckDataset', num_types=2, seq_len=seq_len)
train_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(num_samples=20000, length=(4, 16), max_depth=4, seed=0, **_common))
val_dataloader = dict(
    batch_size=50, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(num_samples=200, length=(4, 16), max_depth=4, seed=1, **_common))
test_dataloader = dict(
    batch_size=50, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(num_samples=200, length=(17, 24), max_depth=8, seed=2, **_common))
val_evaluator = [dict(type='LanguageModelMetric'), dict(type='ThinkingMetric')]
test_evaluator = val_evaluator
