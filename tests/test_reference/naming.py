"""Our names -> the reference's: the inverse of the mappings, written out by hand, to
build checkpoints as the reference would write them (no reference code in the tests)."""
import re

_BLOCK, _LAYER = r'backbone\.blocks\.(\d+)\.', r'transformer.layers.\1.'

# The Llama blocks of the causal models (``qkv`` is split by :func:`as_reference`).
LLAMA = (
    (r'backbone\.norm\.weight', 'transformer.norm.weight'),
    (_BLOCK + r'proj\.weight', _LAYER + 'attention.wo.weight'),
    (_BLOCK + r'mlp\.gate\.weight', _LAYER + 'feed_forward.w1.weight'),
    (_BLOCK + r'mlp\.up\.weight', _LAYER + 'feed_forward.w3.weight'),
    (_BLOCK + r'mlp\.down\.weight', _LAYER + 'feed_forward.w2.weight'),
    (_BLOCK + r'attn_norm\.weight', _LAYER + 'attention_norm.weight'),
    (_BLOCK + r'mlp_norm\.weight', _LAYER + 'ffn_norm.weight'),
)
# The causal EBTs' step token, energy head and step size.
CAUSAL_EBT = (
    (r'thinker\.alpha', 'alpha'),
    (r'backbone\.step_embed\.weight', 'transformer.time_embeddings.weight'),
    (r'backbone\.energy_head\.weight', 'transformer.final_layer.weight'),
)


def as_reference(state_dict, rules):
    """Rename ``state_dict`` by ``rules`` (``(our pattern, reference name)``, first match
    wins); a fused ``qkv`` becomes the reference's separate wq / wk / wv."""
    out = {}
    for key, value in state_dict.items():
        fused = re.fullmatch(_BLOCK + r'qkv\.weight', key)
        if fused:
            for name, part in zip('qkv', value.chunk(3)):
                out[f'transformer.layers.{fused[1]}.attention.w{name}.weight'] = part
            continue
        for pattern, replacement in rules:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise AssertionError(f'no reference name for {key}')
    return out


def assert_round_trip(build, mapping, rules, extra=None):
    """Random weights of ``build()``, written with the reference's names (plus ``extra``
    tensors a reference checkpoint also holds), come back through ``mapping`` into a
    fresh model, every tensor in its place. Returns the reference-named dict."""
    import torch
    source = build()
    with torch.no_grad():
        for param in source.parameters():
            param.normal_()
    reference = {**as_reference(source.state_dict(), rules), **(extra or {})}
    target = build()
    target.load_state_dict(mapping.convert(reference), strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    return reference
