# Transformer++ language-model baseline: the EBT's causal trunk (4xs) with the text head,
# one forward pass per token. output_proj='tied' reads logits through the token embedding
# (features @ E^T), saving a D x V layer; the reference's baseline
# (job_scripts/nlp/pretrain/baseline_transformer.sh) has an untied Linear(D, V):
# output_proj='linear'.
model = dict(
    type='TransformerPPLanguageModel',
    backbone=dict(type='CausalTransformer', arch='4xs'),
    head=dict(type='TextHead', output_proj='tied'))
