# Baseline for configs/quickstart/ebt_text_pydoc.py: Transformer++ on the same trunk, text
# head (tied embedding), data and schedule.
#   python tools/train.py configs/quickstart/transformerpp_text_pydoc.py
_base_ = ['./ebt_text_pydoc.py']

model = dict(
    _delete_=True,
    type='TransformerPPLanguageModel',
    backbone=dict(type='CausalTransformer', arch='4xs'),
    head=dict(type='TextHead'))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
