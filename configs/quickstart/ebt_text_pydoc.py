# Quick-start of the language branch on real text that ships with Python: the help
# topics of `pydoc_data` (about 465k bytes), byte tokens, 64 per sample. The first 95 %
# of the text trains, the last 5 % validates (perplexity per byte, next-byte accuracy).
# A tiny EBT (4xs) thinks 2 steps over next-byte logits. On a 2-core CPU:
#   python tools/train.py configs/quickstart/ebt_text_pydoc.py
_base_ = [
    '../_base_/models/ebt_text.py',
    '../_base_/datasets/pydoc_text_64.py',
    '../_base_/schedules/text_quickstart.py',
]
