# Transformer++ baseline on Dyck-2 completion: the same causal trunk (4xs), tied text head,
# data and schedule as configs/ebt_text_dyck.py, one forward pass per token.
#   python tools/train.py configs/transformerpp_text_dyck.py
_base_ = [
    '_base_/models/transformerpp_text.py',
    '_base_/datasets/dyck_2types_48.py',
    '_base_/schedules/text_quickstart.py',
]

# The global batch lr 1e-3 is for (tools/train.py --auto-scale-lr): the quick-start's own
# 32 on one process, where that lr was chosen. (The reference's nlp/pretrain jobs train
# with 32 per GPU x 4 GPUs x accumulate_grad_batches 2 = 256 at lr 1.2e-3, on other data.)
auto_scale_lr = dict(enable=False, base_batch_size=32)
