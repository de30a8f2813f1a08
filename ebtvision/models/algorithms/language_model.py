"""What the EBT language model and the Transformer++ baseline share."""
from typing import List, NamedTuple, Optional

import torch

from ebtvision.datasets.text import build_tokenizer
from ebtvision.registry import MODELS
from ebtvision.structures import TextDataSample
from ..heads.text_head import TextHead
from ..layers.kv_cache import KVCache
from ..thinking.options import check_test_cfg
from .causal_predictor import CausalPredictor


class TextPrediction(NamedTuple):
    """What ``predict_logits`` returns."""
    logits: torch.Tensor  #: (B, T, V) next-token logits
    energies: Optional[torch.Tensor] = None  #: (B, T) final energies (EBTs)
    steps_used: Optional[torch.Tensor] = None  #: (B,) steps taken (adaptive compute)


class Generation(NamedTuple):
    """What ``generate(..., return_details=True)`` returns."""
    tokens: torch.Tensor  #: (B, n) generated tokens
    energies: Optional[torch.Tensor] = None  #: (B, n) final energy of each (EBTs)
    steps_used: Optional[torch.Tensor] = None  #: (B, n) thinking steps of each (adaptive)


class LanguageModel(CausalPredictor):
    """Base class of next-token predictors over (B, L + 1) token batches.

    Args:
        backbone: Config of the causal transformer.
        head: Config of :class:`TextHead`; ``vocab_size``, ``pad_id`` and ``embed_dims``
            are filled in from the tokenizer and the backbone.
        tokenizer: Tokenizer config (``None``: bytes), used for its vocabulary and for
            decoding generated completions.
        loss_on: ``'all'`` targets, or only ``'completion'`` targets (after a Dyck
            sample's separator).
        eval_seed: Seed of evaluation randomness (EBT initial candidates), per sample.
        test_cfg: Inference options: for EBTs ``num_steps``, ``alpha``,
            ``num_candidates``, ``tolerance``; ``complete`` (generate Dyck completions in
            ``predict``, default True).
    """

    #: The ``test_cfg`` keys this model reads (subclasses add theirs).
    TEST_CFG_KEYS = ('complete', )
    DEFAULT_PREPROCESSOR = 'TextDataPreprocessor'

    def __init__(self, backbone: dict, head: Optional[dict] = None,
                 tokenizer: Optional[dict] = None, loss_on: str = 'all', eval_seed: int = 0,
                 test_cfg: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if loss_on not in ('all', 'completion'):
            raise ValueError(f"loss_on must be 'all' or 'completion', got {loss_on!r}")
        self.tokenizer = build_tokenizer(tokenizer)
        self.backbone = MODELS.build(backbone)
        head = dict(head or dict(type='TextHead'))
        head.setdefault('vocab_size', self.tokenizer.vocab_size)
        head.setdefault('pad_id', self.tokenizer.pad_id)
        head.setdefault('embed_dims', self.backbone.embed_dims)
        self.head = MODELS.build(head)
        if not isinstance(self.head, TextHead):
            raise TypeError(f'head must build a TextHead, got {type(self.head)}')
        self.loss_on, self.eval_seed = loss_on, eval_seed
        self.test_cfg = check_test_cfg(test_cfg, self.TEST_CFG_KEYS, type(self).__name__)

    # ----------------------------------------------------------------- helpers
    def loss_mask(self, targets: torch.Tensor,
                  data_samples: Optional[List[TextDataSample]]) -> torch.Tensor:
        """(B, T) True for the targets the loss and metrics count."""
        mask = self.head.target_mask(targets)
        if self.loss_on == 'completion':
            for position, sample in enumerate(data_samples or []):
                start = int(sample.metainfo.get('prompt_length', 1)) - 1
                mask[position, :start] = False
        return mask

    def predict_logits(self, ids: torch.Tensor, data_samples=None, seed_offset: int = 0,
                       cache: Optional[KVCache] = None, **kwargs) -> TextPrediction:
        """Next-token logits for every position of (B, T) ids.

        With a ``cache`` of the keys and values of the first tokens of ``ids``, the rest
        are appended to it and only the last position's logits (B, 1, V) are returned.
        """
        raise NotImplementedError

    def generate(self, prompt: torch.Tensor, num_tokens: int, use_cache: bool = True,
                 data_samples: Optional[List[TextDataSample]] = None,
                 return_details: bool = False, **kwargs):
        """Greedy continuation (B, num_tokens) of (B, P) prompts, one token at a time.

        With ``use_cache`` the real tokens' keys and values are kept (:class:`KVCache`),
        so each new token costs one token's pass instead of re-reading the sequence; the
        result is the same (up to float rounding). ``data_samples`` (one per row) seed an
        EBT's random starts by sample. Thinking options go in ``kwargs``; adaptive
        stopping then looks at the new token's energy alone.

        Returns:
            The tokens, or with ``return_details`` a :class:`Generation` that adds each
            generated token's final energy and thinking steps (EBTs).
        """
        continuation = self.autoregress(prompt, num_tokens, use_cache, data_samples,
                                        first_seed_offset=1, **kwargs)
        return Generation(*continuation) if return_details else continuation.items

    def predict_next(self, sequence, data_samples, seed_offset, cache, **kwargs):
        prediction = self.predict_logits(sequence, data_samples, seed_offset=seed_offset,
                                         cache=cache, **kwargs)
        energy = None if prediction.energies is None else prediction.energies[:, -1]
        return self.head.decode(prediction.logits[:, -1:]), energy, prediction.steps_used

    # ----------------------------------------------------------------- API
    def predict_tensor(self, inputs: torch.Tensor, data_samples=None) -> torch.Tensor:
        """(B, T, V) next-token logits of the (B, T + 1) batch's first T tokens."""
        return self.predict_logits(inputs[:, :-1], data_samples).logits

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[TextDataSample]] = None) -> List[TextDataSample]:
        if data_samples is None:
            data_samples = [TextDataSample() for _ in range(inputs.shape[0])]
        ids, targets = inputs[:, :-1], inputs[:, 1:]
        prediction = self.predict_logits(ids, data_samples)
        mask = self.loss_mask(targets, data_samples)
        for position, sample in enumerate(data_samples):
            sample.gt_tokens = targets[position].cpu()
            sample.pred_logits = prediction.logits[position].detach().float().cpu()
            sample.loss_mask = mask[position].cpu()
            if prediction.energies is not None:
                sample.energies = prediction.energies[position].detach().cpu()
            if prediction.steps_used is not None:
                sample.steps_used = prediction.steps_used[position].detach().cpu()
        if self.test_cfg.get('complete', True):
            self.complete(inputs, data_samples)
        return data_samples

    def complete(self, inputs: torch.Tensor, data_samples: List[TextDataSample]) -> None:
        """Generate each sample's completion (Dyck: the closing brackets) after its prompt.

        Samples with prompts of the same length are generated as one batch, as long as
        the longest completion among them; each keeps its own number of tokens. Seeds
        follow the samples, so batching does not change an EBT's result.
        """
        by_prompt_length = {}
        for position, sample in enumerate(data_samples):
            if sample.metainfo.get('completion'):
                by_prompt_length.setdefault(int(sample.prompt_length), []).append(position)
        for length, positions in by_prompt_length.items():
            group = [data_samples[position] for position in positions]
            counts = [len(self.tokenizer.encode(sample.completion)) for sample in group]
            generated = self.generate(inputs[positions, :length], max(counts),
                                      data_samples=group)
            for sample, tokens, count in zip(group, generated, counts):
                sample.pred_completion_tokens = tokens[:count].cpu()
                sample.pred_completion = self.tokenizer.decode(tokens[:count].tolist())
