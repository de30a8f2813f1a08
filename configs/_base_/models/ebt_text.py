# EBT language model (ebt-method.md section 6), the paper's S1 text setting: candidates are
# logits over the byte vocabulary (random start), embedded as softmax(logits) @ E by the
# shared TextHead and scored by a tiny causal EBT (4xs); 2 thinking steps, alpha 500
# learnable (its lr multiplier, 3 x alpha = 1500, comes from the schedule's constructor).
model = dict(
    type='EBTLanguageModel',
    backbone=dict(type='CausalEBT', arch='4xs', max_steps=2),
    head=dict(type='TextHead', init_std=1.0),
    thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=500.0, learnable_alpha=True))
