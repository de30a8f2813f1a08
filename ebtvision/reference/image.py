"""Image families: the reference's ``EBT_IMG_Denoise`` and its DiT denoiser
(``Diffusion_Transformer_IMG_Denoise``)."""
from .mapping import StateDictMapping

# Blocks of the bidirectional EBT and of the DiT share names in both code bases, except
# for the MLP (timm's fc1 / fc2, our Sequential indices 0 / 2).
_ADALN_BLOCKS = (
    (r'blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)', r'blocks.\1.attn.\2.\3'),
    (r'blocks\.(\d+)\.mlp\.fc1\.(weight|bias)', r'blocks.\1.mlp.0.\2'),
    (r'blocks\.(\d+)\.mlp\.fc2\.(weight|bias)', r'blocks.\1.mlp.2.\2'),
    (r'blocks\.(\d+)\.adaLN_modulation\.1\.(weight|bias)', r'blocks.\1.adaLN_modulation.1.\2'),
    (r'x_embedder\.proj\.(weight|bias)', r'patch_embed.proj.\1'),
    (r'final_layer\.(linear|adaLN_modulation\.1)\.(weight|bias)', r'final_layer.\1.\2'),
)


def _prefixed(prefix: str, ours: str, rules):
    return tuple((rf'{prefix}\.{pattern}', f'{ours}.{replacement}')
                 for pattern, replacement in rules)


IMAGE_EBT = StateDictMapping(
    renames=_prefixed('transformer', 'backbone', _ADALN_BLOCKS) + (
        (r'learned_adaln_condition\.weight', 'backbone.learned_condition'),
        (r'alpha', 'thinker.alpha'),
    ),
    # Fixed sin-cos positions (recomputed by our backbone); the Langevin std is a
    # setting of ours (thinker.langevin_sigma), not a weight.
    ignore=(r'transformer\.pos_embed', r'langevin_dynamics_noise_std'),
)

# The reference holds its DiT as ``diffusion_transformer``; the timestep MLP is named
# alike on both sides. Learned sigma needs no rule: the final layer's shape says whether
# a checkpoint learned it (ours: ``backbone.learn_sigma``).
IMAGE_DIT = StateDictMapping(
    renames=_prefixed('diffusion_transformer', 'backbone', _ADALN_BLOCKS + (
        (r't_embedder\.mlp\.(0|2)\.(weight|bias)', r't_embedder.mlp.\1.\2'),
    )),
    ignore=(r'diffusion_transformer\.pos_embed', ),
)
