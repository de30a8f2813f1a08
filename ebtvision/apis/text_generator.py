"""Continue text prompts with a language model (EBT or Transformer++): the API behind
``demo/generate_text.py``.

    from ebtvision.apis import TextGenerator
    generator = TextGenerator('configs/quickstart/ebt_text_pydoc.py',
                              'work_dirs/ebt_text_pydoc/iter_800.pth')
    result = generator('The for statement', num_tokens=32, num_candidates=2)
    result.continuation, result.energies, result.steps_used

Generation is greedy, one token at a time, with the KV cache (``model.generate``). An
EBT thinks about every new token (``num_steps``, self-verification over
``num_candidates`` random starts, adaptive stopping with ``tolerance``); the final
energy of each generated token is its uncertainty.
"""
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch

from ebtvision.models.thinking.options import positive_int
from .base_inferencer import BaseInferencer


@dataclass
class TextGeneration:
    """The continuation of one prompt.

    Attributes:
        prompt: The prompt.
        continuation: The generated text (the tokens decoded together).
        tokens: The generated token ids.
        token_texts: Each generated token decoded on its own.
        energies: Final energy of each generated token (EBTs; ``None`` otherwise).
        steps_used: Thinking steps each token took (adaptive stopping; else ``None``).
        prompt_length: Tokens in the prompt.
        seconds: Wall time of the generation.
    """
    prompt: str
    continuation: str
    tokens: List[int]
    token_texts: List[str]
    energies: Optional[List[float]] = None
    steps_used: Optional[list] = None
    prompt_length: int = 0
    seconds: float = 0.0


class TextGenerator(BaseInferencer):
    """Builds a language model from a config and a checkpoint and continues prompts.

    Args:
        config: Config file (or :class:`Config`) of an ``EBTLanguageModel`` or
            ``TransformerPPLanguageModel``.
        checkpoint: Checkpoint of that model, loaded weights-only; ``None`` keeps random
            weights (smoke tests only).
        device: ``'cpu'`` or ``'cuda[:N]'``.
        cfg_options: Overrides merged into the config.

    Raises:
        ModelLoadError: See :func:`init_model`; also when the config is not a language
            model.
    """

    TASK = 'a language model'
    MODEL_TYPES = ('EBTLanguageModel', 'TransformerPPLanguageModel')
    ONE_PASS = 'predicts each token in one pass'

    @classmethod
    def task_class(cls) -> type:
        from ebtvision.models import LanguageModel
        return LanguageModel

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def trained_length(self) -> Optional[int]:
        """Sequence length the config trains on (``train_dataloader.dataset.seq_len``)."""
        loader = self.cfg.get('train_dataloader') or {}
        return (loader.get('dataset') or {}).get('seq_len')

    def __call__(self,
                 prompts: Union[str, Sequence[str]],
                 num_tokens: int = 64,
                 num_steps: Optional[int] = None,
                 alpha: Optional[float] = None,
                 num_candidates: Optional[int] = None,
                 tolerance: Optional[float] = None,
                 use_cache: bool = True) -> Union[TextGeneration, List[TextGeneration]]:
        """Continue a prompt (or each of several) by ``num_tokens`` tokens.

        Each prompt is generated on its own (an EBT's random starts are seeded by batch
        row, so a prompt's continuation does not depend on the others).

        Args:
            prompts: A non-empty string, or a list of them.
            num_tokens: Tokens to generate per prompt.
            num_steps: EBT thinking steps per token (default: the config's).
            alpha: EBT step size override.
            num_candidates: EBT self-verification: random starts per token.
            tolerance: EBT adaptive stopping: stop once the energy changes by less than
                this fraction per step (``steps_used`` is then reported).
            use_cache: Keep the keys and values of the tokens read (faster, the same
                result up to float rounding).

        Returns:
            A :class:`TextGeneration` for a string, a list of them for a list.

        Raises:
            ValueError: An empty prompt, a bad option (the validator's message), or an
                EBT-only option for Transformer++.
        """
        num_tokens = positive_int('argument.num_tokens', num_tokens)
        options = self.model_options(
            self.check_thinking(num_steps, alpha, num_candidates, tolerance))
        single = isinstance(prompts, str)
        prompts = [prompts] if single else list(prompts)
        for prompt in prompts:
            if not isinstance(prompt, str) or not prompt:
                raise ValueError(f'prompts must be non-empty strings, got {prompt!r}: the '
                                 'model needs at least one token to continue')
        self.model.eval()
        results = [self._generate(prompt, num_tokens, use_cache, options) for prompt in prompts]
        return results[0] if single else results

    def _generate(self, prompt: str, num_tokens: int, use_cache: bool,
                  options: dict) -> TextGeneration:
        ids = self.tokenizer.encode(prompt)
        if not ids:
            raise ValueError(f'the prompt {prompt!r} has no tokens to continue')
        started = time.perf_counter()
        generation = self.model.generate(torch.tensor([ids], device=self.device), num_tokens,
                                         use_cache, return_details=True, **options)
        seconds = time.perf_counter() - started
        tokens = generation.tokens[0].tolist()
        return TextGeneration(
            prompt=prompt, continuation=self.tokenizer.decode(tokens), tokens=tokens,
            token_texts=[self.tokenizer.decode([token]) for token in tokens],
            energies=None if generation.energies is None else generation.energies[0].tolist(),
            steps_used=(None if generation.steps_used is None
                        else generation.steps_used[0].tolist()),
            prompt_length=len(ids), seconds=seconds)
