# Weights & Biases next to MMEngine's local files (vis_data/scalars.json and the image
# grids): the training losses, learning rate, thinking step size `alpha`, energies, the
# validation PSNR / SSIM and the visualisation hooks' grids, in the W&B project `ebtvision`.
# Needs `pip install wandb` and `wandb login` (or WANDB_MODE=offline, then `wandb sync`).
# Use it on any config:
#   python tools/test.py CONFIG CKPT --vis-backend wandb
# or copy the line below into the body of a config of your own (after its `_base_`).
# It cannot be listed in `_base_` next to a config that has a runtime: MMEngine refuses a
# key that two bases define, and configs/_base_/default_runtime.py defines `visualizer`.
visualizer = dict(
    type='Visualizer', name='visualizer',
    vis_backends=[dict(type='LocalVisBackend'),
                  dict(type='WandbVisBackend', init_kwargs=dict(project='ebtvision'))])
