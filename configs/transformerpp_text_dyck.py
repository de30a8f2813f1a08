# Transformer++ baseline on Dyck-2 completion: the same causal trunk (4xs), tied text head,
# data and schedule as configs/ebt_text_dyck.py, one forward pass per token.
#   python tools/train.py configs/transformerpp_text_dyck.py
_base_ = [
    '_base_/models/transformerpp_text.py',
    '_base_/datasets/dyck_2types_48.py',
    '_base_/schedules/text_quickstart.py',
]
