# Paper-scale data-scaling sweep on Something-Something V2 (ebt-method.md section 5): the
# xxs causal EBT (configs/ebt_ssv2_nextframe.py) against Transformer++
# (configs/transformerpp_ssv2_nextframe.py), over frozen SD-VAE latents of 224 px frames,
# context 16. For a cluster: print one command per point and submit them, e.g.
#   python tools/analysis/scaling.py configs/scaling/ssv2_ebt_vs_transformerpp_data.py \
#       --dry-run --launcher slurm --partition PARTITION --gpus 8 \
#       --out-dir work_dirs/scaling/ssv2_data
# then run the same line without --dry-run (on a node with the finished work dirs) to read
# the points, fit and plot. The data and flops axes count the global batch: --gpus x 16
# per GPU (x optim_wrapper.accumulative_counts).
families = dict(
    ebt=dict(config='configs/ebt_ssv2_nextframe.py'),
    transformerpp=dict(config='configs/transformerpp_ssv2_nextframe.py'),
)
baseline = 'transformerpp'
axes = [
    # Training clips seen: with 8 GPUs (global batch 128) 10k ... 160k iterations; the 100k
    # of the paper's runs is between the last two. The schedule (10k warm-up, cosine over
    # 1M steps) is scaled with the iterations.
    dict(name='data', values=[1_280_000, 2_560_000, 5_120_000, 10_240_000, 20_480_000]),
]
# The paper's video metric: the minimum validation smooth-L1 on latents over training,
# here over 10 validations per point.
metric = dict(name='nextframe/smooth_l1', rule='less', reduce='best')
validations = 10
seeds = [0]
fit = dict(offset=False, samples=2000, level=0.95, method='residuals')
