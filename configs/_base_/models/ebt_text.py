# EBT language model (docs/method.md#language), the paper's S1 text setting as in the
# reference's job_scripts/nlp/pretrain/ebt_s1.sh: candidates are logits (random normal
# start), 2 thinking steps, alpha 500 learnable (its lr multiplier, 3 x alpha = 1500, comes
# from the schedule's constructor); here a tiny causal EBT (4xs) over bytes.
# Differences from that job besides its size, vocabulary and data (the options named here
# reproduce the job; tools/benchmark/parity_families/text.py checks them against its code):
# - candidate_embed='tied': a candidate is embedded as softmax(logits) @ E, so a confident
#   one is embedded exactly like the token it names, and no V x D layer is added (with the
#   job's 50k-token vocabulary that layer outweighs a small backbone). It is the
#   reference's --vocab_to_embed_uses_prob_dist; its default, an untied Linear(V, D), is
#   candidate_embed='linear'.
# - step_condition='add': the thinking step is added to the candidates, so real tokens
#   never depend on it and their keys / values are cached across steps and generated
#   tokens; the reference's step token (`--ebt_type time_embed`) is step_condition='token'.
# - The quick-start's MLP width and initialisation: mlp_ratio 4 (the job's hidden size
#   equal to the width is mlp_ratio=1.5), PyTorch's init (the job's is the backbone's
#   weight_init='xavier' and the head's embed_std=1.0).
model = dict(
    type='EBTLanguageModel',
    backbone=dict(type='CausalEBT', arch='4xs', max_steps=2, step_condition='add'),
    head=dict(type='TextHead', init_std=1.0, candidate_embed='tied'),
    thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=500.0, learnable_alpha=True))
