# EBT language model on Dyck-2 completion (docs/method.md#language): candidates are logits
# over the byte vocabulary (random start), embedded as softmax(logits) @ E by the shared
# TextHead and scored by a causal EBT. S1 setting of the paper (alpha 500, lr multiplier
# 1500, 2 thinking steps; see _base_/models/ebt_text.py for how it relates to the
# reference's job_scripts/nlp/pretrain/ebt_s1.sh). A 2-core CPU finishes it in minutes:
#   python tools/train.py configs/ebt_text_dyck.py
#   python tools/test.py configs/ebt_text_dyck.py work_dirs/ebt_text_dyck/iter_800.pth \
#       --thinking-steps 4 --num-candidates 4        # the OOD test set (longer, deeper)
_base_ = [
    '_base_/models/ebt_text.py',
    '_base_/datasets/dyck_2types_48.py',
    '_base_/schedules/text_quickstart.py',
]

model = dict(test_cfg=dict(complete=True))

# The global batch lr 1e-3 is for (tools/train.py --auto-scale-lr): the quick-start's own
# 32 on one process, where that lr was chosen. (The reference's nlp/pretrain jobs train
# with 32 per GPU x 4 GPUs x accumulate_grad_batches 2 = 256 at lr 1.2e-3, on other data.)
auto_scale_lr = dict(enable=False, base_batch_size=32)
