# Transformer++ language-model baseline: the EBT's causal trunk (4xs) with the text head
# (tied embedding), one forward pass per token.
model = dict(
    type='TransformerPPLanguageModel',
    backbone=dict(type='CausalTransformer', arch='4xs'),
    head=dict(type='TextHead'))
