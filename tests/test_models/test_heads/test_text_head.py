"""TextHead: token and candidate embeddings, the padding-masked loss."""
import torch
import torch.nn.functional as F

from ebtvision.models import TextHead


def test_text_head_embedding_and_loss():
    head = TextHead(vocab_size=11, embed_dims=4, pad_id=10)
    ids = torch.tensor([[1, 2, 10]])
    torch.testing.assert_close(head.embed_tokens(ids), head.token_embed.weight[ids])
    # A one-hot-like candidate embeds as that token's embedding.
    logits = torch.full((1, 1, 11), -1e4)
    logits[0, 0, 3] = 0
    probs = head.normalize(logits)
    torch.testing.assert_close(head.embed_candidates(probs)[0, 0], head.token_embed.weight[3])
    # Uniform logits embed as the mean embedding.
    torch.testing.assert_close(head.embed_candidates(head.normalize(torch.zeros(1, 1, 11)))[0, 0],
                               head.token_embed.weight.mean(0))
    # Padding targets are ignored by the loss.
    scores = torch.randn(1, 3, 11)
    expected = F.cross_entropy(scores[0, :2], ids[0, :2])
    torch.testing.assert_close(head.loss(scores, ids), expected)
    assert head.decode(scores).shape == (1, 3)
