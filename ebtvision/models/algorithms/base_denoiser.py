"""What the EBT denoiser and the DiT baseline share: noising, evaluation, packing."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from ebtvision.registry import MODELS
from ebtvision.structures import DenoiseDataSample
from ..diffusion import DDPMSchedule
from ..thinking.options import noise_level
from .task_model import TaskModel, sample_generator


def noise_level_key(level: float) -> str:
    """Key of a noise level in predictions and metric names: 0.1 -> '0.1'."""
    return f'{float(level):g}'


class BaseDenoiser(TaskModel):
    """Base class of image denoisers trained on DDPM-noised images.

    ``forward`` modes: ``'loss'`` takes clean images (noised here); ``'predict'`` noises
    them at every evaluation level and denoises them; ``'tensor'`` denoises inputs taken
    as noisy at the training level.

    Args:
        schedule: Config of the noise schedule (:class:`DDPMSchedule`).
        train_noise_level: Noise level of training (0.1 = t 99 of 1000).
        eval_noise_levels: Noise levels every validation/test sample is evaluated at.
        eval_seed: Seed of the evaluation noise. Noise is drawn per sample from
            ``(eval_seed, sample_idx, level)``, so every model and every run sees the same
            noisy images and scores are comparable.
        stretch_eval_noise: Noise evaluation inputs as the reference implementation
            does: on the schedule stretched per level (:meth:`stretched_schedule`; at 0.2
            abar 0.6597 instead of 0.6590 at t = 199 of 1000; the same at the training
            level). Set it on every model that is compared.
        data_preprocessor: Config of the data preprocessor.
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 schedule: Optional[dict] = None,
                 train_noise_level: float = 0.1,
                 eval_noise_levels: Sequence[float] = (0.1, 0.2),
                 eval_seed: int = 0,
                 stretch_eval_noise: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.schedule = MODELS.build(schedule or dict(type='DDPMSchedule'))
        if not isinstance(self.schedule, DDPMSchedule):
            raise TypeError(f'schedule must build a DDPMSchedule, got {type(self.schedule)}')
        self.train_noise_level = noise_level('train_noise_level', train_noise_level)
        self.train_timestep = self.schedule.timestep(train_noise_level)
        if not eval_noise_levels:
            raise ValueError('eval_noise_levels must name at least one level')
        self.eval_noise_levels = [noise_level('eval_noise_levels', level)
                                  for level in eval_noise_levels]
        self.eval_seed = eval_seed
        if not isinstance(stretch_eval_noise, bool):
            raise TypeError(f'stretch_eval_noise must be True or False, got {stretch_eval_noise!r}')
        self.stretch_eval_noise = stretch_eval_noise

    # ----------------------------------------------------------------- noising
    def add_noise(self, x0: torch.Tensor, t: Union[int, torch.Tensor],
                  noise: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Noise clean images to timestep ``t``; returns ``(x_t, noise)``."""
        if noise is None:
            noise = torch.randn_like(x0)
        t = torch.as_tensor(t).reshape(-1).expand(x0.shape[0])
        return self.schedule.q_sample(x0, t, noise), noise

    def stretched_schedule(self, level: float) -> Tuple[DDPMSchedule, int]:
        """``(schedule, t)``: the training schedule stretched to ``T = int(t_train / level)``
        steps (``t_train`` = training timestep + 1) and ``t = int(level * T) - 1``, the
        training timestep's index, whose ``abar`` is about that of ``level`` (the
        reference's schedule for a level: 500 steps and t = 99 at 0.2)."""
        schedule = self.schedule.stretched(int((self.train_timestep + 1) / level))
        return schedule, int(level * schedule.num_timesteps) - 1

    def noise_for_eval(self, x0: torch.Tensor, level: float,
                       noise: torch.Tensor) -> torch.Tensor:
        """``x0`` noised with ``noise`` at ``level`` as evaluation does."""
        schedule, t = self.stretched_schedule(level) if self.stretch_eval_noise \
            else (self.schedule, self.schedule.timestep(level))
        return schedule.q_sample(x0, t, noise)

    def eval_noise(self, x0: torch.Tensor, data_samples: Optional[List[DenoiseDataSample]],
                   level_index: int) -> torch.Tensor:
        """Deterministic per-sample noise for evaluation (see ``eval_seed``)."""
        noises = []
        for position in range(x0.shape[0]):
            generator = sample_generator(self.eval_seed, data_samples, position, 101,
                                         level_index)
            noises.append(torch.randn(x0.shape[1:], generator=generator))
        return torch.stack(noises).to(device=x0.device, dtype=x0.dtype)

    # ----------------------------------------------------------------- API
    def predict_tensor(self, inputs: torch.Tensor, data_samples=None) -> torch.Tensor:
        """``inputs`` taken as noisy at the training level, denoised."""
        return self.denoise(inputs, self.train_noise_level)[0]

    def denoise(self, noisy: torch.Tensor, noise_level: float,
                num_steps: Optional[int] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Denoise a batch; returns ``(denoised, energies or None)``.

        ``num_steps`` overrides ``test_cfg.num_steps`` (thinking steps of an EBT,
        reverse steps of a DiT).
        """
        raise NotImplementedError

    def predict_level(self, noisy: torch.Tensor, noise_level: float,
                      generator: torch.Generator) -> Dict[str, torch.Tensor]:
        """Denoise a batch noised at ``noise_level`` for evaluation.

        Returns batch tensors keyed by the data-sample field they fill: ``pred_imgs``,
        and whatever else the model reports (``energies``, ``energy_maps``...).
        ``generator`` is seeded from ``eval_seed``, the level and the batch's first
        sample, for models that draw random numbers (self-verification).
        """
        denoised, energies = self.denoise(noisy, noise_level)
        outputs = dict(pred_imgs=denoised)
        if energies is not None:
            outputs['energies'] = energies
        return outputs

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DenoiseDataSample]] = None
                ) -> List[DenoiseDataSample]:
        """Noise ``inputs`` at every evaluation level and denoise them.

        Every data sample gets ``gt_img`` and, per level key (``'0.1'``...), ``noisy_imgs``
        and the model's outputs (``pred_imgs``; EBTs add ``energies``, ``energy_maps``
        and ``steps_used``).
        """
        if data_samples is None:
            data_samples = [DenoiseDataSample() for _ in range(inputs.shape[0])]
        fields: Dict[str, Dict[str, torch.Tensor]] = {}
        for level_index, level in enumerate(self.eval_noise_levels):
            noise = self.eval_noise(inputs, data_samples, level_index)
            noisy = self.noise_for_eval(inputs, level, noise)
            # Seeded by the batch's first sample: the same whatever the batch size.
            generator = sample_generator(self.eval_seed, data_samples, 0, 101,
                                         level_index + 7)
            outputs = self.predict_level(noisy, level, generator)
            outputs['noisy_imgs'] = noisy
            for name, batch in outputs.items():
                fields.setdefault(name, {})[noise_level_key(level)] = batch
        for position, sample in enumerate(data_samples):
            sample.gt_img = inputs[position].detach().cpu()
            for name, per_level in fields.items():
                sample.set_field(
                    {key: batch[position].detach().cpu() for key, batch in per_level.items()},
                    name)
        return data_samples
