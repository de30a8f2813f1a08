"""TextHead: token and candidate embeddings, the padding-masked loss."""
import pytest
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


def test_text_head_untied_projections():
    tied = TextHead(vocab_size=11, embed_dims=4, pad_id=10)
    assert tied.candidate_proj is None and tied.logits_proj is None
    head = TextHead(vocab_size=11, embed_dims=4, pad_id=10, candidate_embed='linear',
                    output_proj='linear')
    probs = head.normalize(torch.randn(2, 3, 11))
    torch.testing.assert_close(head.embed_candidates(probs),
                               probs @ head.candidate_proj.weight.t())
    features = torch.randn(2, 3, 4)
    torch.testing.assert_close(head.logits_from_features(features),
                               features @ head.logits_proj.weight.t())
    # Untied: the token embedding no longer enters either path.
    head.token_embed.weight.data.zero_()
    assert head.embed_candidates(probs).abs().sum() > 0
    assert head.logits_from_features(features).abs().sum() > 0
    # The reference's token embedding keeps PyTorch's N(0, 1) start.
    torch.manual_seed(0)
    wide = TextHead(vocab_size=500, embed_dims=40, pad_id=0, embed_std=1.0)
    assert 0.95 < float(wide.token_embed.weight.detach().std()) < 1.05
    assert float(tied.token_embed.weight.detach().std()) < 0.05
    with pytest.raises(ValueError, match="candidate_embed must be one of"):
        TextHead(vocab_size=11, embed_dims=4, pad_id=10, candidate_embed='mlp')
    with pytest.raises(ValueError, match="output_proj must be one of"):
        TextHead(vocab_size=11, embed_dims=4, pad_id=10, output_proj=True)
