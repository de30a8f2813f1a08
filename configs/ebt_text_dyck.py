# EBT language model on Dyck-2 completion (ebt-method.md section 6): candidates are logits
# over the byte vocabulary (random start), embedded as softmax(logits) @ E by the shared
# TextHead and scored by a causal EBT. S1 setting of the paper: alpha 500 (lr multiplier
# 1500), 2 thinking steps. A 2-core CPU finishes it in minutes:
#   python tools/train.py configs/ebt_text_dyck.py
#   python tools/test.py configs/ebt_text_dyck.py work_dirs/ebt_text_dyck/iter_800.pth \
#       --thinking-steps 4 --num-candidates 4        # the OOD test set (longer, deeper)
_base_ = ['_base_/datasets/dyck_2types_48.py', '_base_/schedules/text_quickstart.py']

model = dict(
    type='EBTLanguageModel',
    backbone=dict(type='CausalEBT', arch='4xs', max_steps=2),
    head=dict(type='TextHead', init_std=1.0),
    thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=500.0, learnable_alpha=True),
    test_cfg=dict(complete=True))

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'thinker.alpha': dict(lr_mult=1500.0, decay_mult=0.0)}))
