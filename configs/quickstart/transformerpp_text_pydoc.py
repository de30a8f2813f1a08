# Baseline for configs/quickstart/ebt_text_pydoc.py: Transformer++ on the same trunk, text
# head (tied embedding), data and schedule.
#   python tools/train.py configs/quickstart/transformerpp_text_pydoc.py
_base_ = [
    '../_base_/models/transformerpp_text.py',
    '../_base_/datasets/pydoc_text_64.py',
    '../_base_/schedules/text_quickstart.py',
]
