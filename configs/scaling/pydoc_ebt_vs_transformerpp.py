# Scaling sweep on real text (pydoc_data help topics, byte tokens, 64 per sample): the
# quick-start EBT (4xs, 2 thinking steps) against Transformer++ on the same trunk, data
# and schedule, along training data and along width, sized for a shared 2-core CPU (an EBT
# step at batch 16 took 0.85 s on a quiet core, 3.6 s on the busy machine of the first run).
#   python tools/analysis/scaling.py configs/scaling/pydoc_ebt_vs_transformerpp.py \
#       --out-dir work_dirs/scaling/pydoc
families = dict(
    ebt=dict(config='configs/quickstart/ebt_text_pydoc.py'),
    transformerpp=dict(config='configs/quickstart/transformerpp_text_pydoc.py'),
)
baseline = 'transformerpp'
# Every point: validate on the first 40 % of the held-out 5 % (the same bytes for every
# point; the whole split costs more than a short run's training on a CPU).
cfg_options = {
    'val_dataloader.dataset.split_range': [0.95, 0.97],
}
axes = [
    # Training samples seen (64 bytes each) at batch 16: 12 ... 100 iterations.
    dict(name='data', values=[200, 400, 800, 1600]),
    # Width at a fixed 40 iterations with 32-wide heads (1 ... 6 heads); fitted against
    # the non-embedding parameters, the paper's parameter axis.
    dict(name='width', values=[32, 64, 128, 192], head_dim=32, max_iters=40,
         x='non_embedding'),
]
# LanguageModelMetric's per-byte perplexity on the validation bytes, at the end of training.
metric = dict(name='text/perplexity', rule='less', reduce='last')
# Two seeds per point (both fitted): short runs are noisy, the spread shows how much.
seeds = [0, 1]
fit = dict(offset=False, samples=2000, level=0.95, method='residuals')
