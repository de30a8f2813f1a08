"""Divergence protection: non-finite / exploded steps, checkpoints, below-floor metrics."""
import glob
import os.path as osp
import warnings
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from ebtvision.engine import (DivergenceHook, FiniteCheckAmpOptimWrapper,
                              FiniteCheckOptimWrapper, NonFiniteError,
                              enable_divergence_checks)
from ebtvision.engine.hooks.divergence_hook import below_floor, nonfinite_weights
from ebtvision.utils import register_all_modules

# ---------------------------------------------------------------------------------------
# The optimizer wrappers on a tiny linear model
# ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_message_hub(request):
    # The wrappers count skips and read the iteration in the current message hub.
    MessageHub.get_instance(f'divergence_{request.node.name}')


def linear_and_wrapper(wrapper_type=FiniteCheckOptimWrapper, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    return model, wrapper_type(optimizer=optimizer, **kwargs)


def snapshot(model, wrapper):
    """Parameters and optimizer state (AdamW's step count and moments), flattened."""
    values = {name: value.detach().clone() for name, value in model.named_parameters()}
    for index, state in wrapper.optimizer.state_dict()['state'].items():
        values.update({f'{index}.{key}': torch.as_tensor(value).clone()
                       for key, value in state.items()})
    return values


def same(first, second) -> bool:
    return first.keys() == second.keys() and all(
        torch.equal(first[key], second[key]) for key in first)


def update(model, wrapper, scale=1.0, nan=False):
    with wrapper.optim_context(model):
        loss = model(torch.ones(2, 3)).pow(2).mean() * scale
    wrapper.update_params(loss * float('nan') if nan else loss)


def inf_gradient_update(model, wrapper):
    """A finite loss (0) whose gradient is infinite: d/dx sqrt(x) at 0."""
    with wrapper.optim_context(model):
        loss = torch.sqrt(model.weight - model.weight.detach()).sum()
    assert torch.isfinite(loss)
    wrapper.update_params(loss)


def set_iteration(index: int) -> None:
    MessageHub.get_current_instance().update_info('iter', index)


def test_error_mode_names_the_iteration_the_quantity_and_the_cause():
    model, wrapper = linear_and_wrapper()
    set_iteration(6)
    with pytest.raises(NonFiniteError, match=r'iteration 7: the loss is nan .*learning rate '
                       r'optim_wrapper\.optimizer\.lr \(0\.1\)'):
        update(model, wrapper, nan=True)
    model, wrapper = linear_and_wrapper(clip_grad=dict(max_norm=1.0))
    before = snapshot(model, wrapper)
    with pytest.raises(NonFiniteError, match='iteration 7: the gradient norm is inf'):
        inf_gradient_update(model, wrapper)
    assert same(snapshot(model, wrapper), before)  # nothing was applied


def test_an_exploded_finite_loss_is_a_divergence_too():
    model, wrapper = linear_and_wrapper(max_loss_ratio=100)
    update(model, wrapper)
    update(model, wrapper, scale=5.0)  # 5x: fine
    with pytest.raises(NonFiniteError, match='more than optim_wrapper.max_loss_ratio=100 times'):
        update(model, wrapper, scale=1e5)
    model, wrapper = linear_and_wrapper(max_loss_ratio=None)
    update(model, wrapper)
    update(model, wrapper, scale=1e5)  # the check is off


def test_skip_mode_leaves_parameters_unchanged_counts_and_continues():
    model, wrapper = linear_and_wrapper(nonfinite='skip', max_consecutive_skips=2,
                                        clip_grad=dict(max_norm=1.0))
    set_iteration(0)
    update(model, wrapper)
    before = snapshot(model, wrapper)
    update(model, wrapper, nan=True)
    assert same(snapshot(model, wrapper), before)
    inf_gradient_update(model, wrapper)
    assert same(snapshot(model, wrapper), before)
    assert all(param.grad is None for param in model.parameters())  # nothing left over
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (2, 2)
    assert MessageHub.get_current_instance().get_scalar('train/skipped_steps').current() == 2
    update(model, wrapper)  # a finite step goes through and resets the streak
    assert snapshot(model, wrapper)['weight'].ne(before['weight']).all()
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (2, 0)
    update(model, wrapper, nan=True)
    update(model, wrapper, nan=True)
    set_iteration(9)
    with pytest.raises(NonFiniteError, match=r'iteration 10: the loss is nan \(non-finite\), '
                       r'and 3 steps in a row were skipped \(more than '
                       r'optim_wrapper.max_consecutive_skips=2'):
        update(model, wrapper, nan=True)


def test_a_resumed_run_goes_on_counting_skips():
    MessageHub.get_current_instance().update_scalar('train/skipped_steps', 3)  # as resumed
    model, wrapper = linear_and_wrapper(nonfinite='skip')
    update(model, wrapper, nan=True)
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (4, 1)


def _two_process_skip(rank: int, port: int, results) -> None:
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2)
    try:
        MessageHub.get_instance(f'rank{rank}')
        model, wrapper = linear_and_wrapper(nonfinite='skip')
        before = snapshot(model, wrapper)
        update(model, wrapper, nan=rank == 0)  # only process 0's loss is NaN
        results[rank] = (same(snapshot(model, wrapper), before), wrapper.skipped_steps,
                         wrapper._skip_reason)
    finally:
        dist.destroy_process_group()


def test_all_processes_skip_together():
    # Each process checks its own loss; a step skipped on one but taken on another would
    # hang DistributedDataParallel (and desynchronise the weights).
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_two_process_skip, args=(port, results), nprocs=2, join=True)
    assert dict(results) == {0: (True, 1, None), 1: (True, 1, None)}


def test_skip_mode_drops_the_whole_accumulation_window():
    model, wrapper = linear_and_wrapper(nonfinite='skip', accumulative_counts=2)
    before = snapshot(model, wrapper)
    update(model, wrapper, nan=True)
    update(model, wrapper)  # completes the window: not applied either
    assert same(snapshot(model, wrapper), before) and wrapper.skipped_steps == 1
    update(model, wrapper)
    update(model, wrapper)
    assert snapshot(model, wrapper)['weight'].ne(before['weight']).all()


def test_finite_training_is_exactly_mmengines():
    results = []
    for wrapper_type in (OptimWrapper, FiniteCheckOptimWrapper):
        model, wrapper = linear_and_wrapper(wrapper_type, clip_grad=dict(max_norm=0.05))
        for scale in (1.0, 3.0, 0.5):
            update(model, wrapper, scale=scale)
        results.append(snapshot(model, wrapper))
    for name in results[0]:
        torch.testing.assert_close(results[1][name], results[0][name], rtol=0, atol=0)


def amp_wrapper_on_cpu(**kwargs):
    """FiniteCheckAmpOptimWrapper with a CPU GradScaler (MMEngine's insists on CUDA)."""
    with mock.patch('mmengine.optim.optimizer.amp_optimizer_wrapper.is_cuda_available',
                    lambda: True), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch.cuda.amp.GradScaler: deprecated / no CUDA
        model, wrapper = linear_and_wrapper(FiniteCheckAmpOptimWrapper, max_loss_ratio=None,
                                            **kwargs)
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0**4)
    return model, wrapper


def test_amp_lets_the_grad_scaler_skip_but_stops_when_it_keeps_skipping():
    model, wrapper = amp_wrapper_on_cpu(max_consecutive_skips=2, clip_grad=dict(max_norm=1.0))
    set_iteration(3)
    update(model, wrapper)
    before = snapshot(model, wrapper)
    update(model, wrapper, nan=True)  # error mode, but AMP: skipped, not an error
    update(model, wrapper, scale=1e38)  # finite loss, the scaled one overflows
    assert same(snapshot(model, wrapper), before)
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (2, 2)
    assert wrapper.loss_scaler.get_scale() == 2.0**3  # the scaler backed off once
    with pytest.raises(NonFiniteError, match=r'iteration 4: the gradients overflowed at loss '
                       r'scale 8, and 3 steps in a row were skipped'):
        update(model, wrapper, scale=1e38)


def test_amp_healthy_steps_reset_the_streak():
    model, wrapper = amp_wrapper_on_cpu(max_consecutive_skips=1)
    update(model, wrapper, scale=1e38)
    update(model, wrapper)
    update(model, wrapper, scale=1e38)
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (2, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_amp_on_cuda():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).cuda()
    wrapper = FiniteCheckAmpOptimWrapper(
        optimizer=torch.optim.AdamW(model.parameters(), lr=0.1), loss_scale=dict(init_scale=256.),
        max_consecutive_skips=2, max_loss_ratio=None, clip_grad=dict(max_norm=1.0))

    def step(scale=1.0):
        with wrapper.optim_context(model):
            loss = model(torch.ones(2, 3, device='cuda')).float().pow(2).mean() * scale
        wrapper.update_params(loss)

    step()
    weight = model.weight.detach().clone()
    step(scale=1e38)
    step(scale=1e38)
    assert torch.equal(model.weight, weight) and wrapper.skipped_steps == 2
    with pytest.raises(NonFiniteError, match='3 steps in a row were skipped'):
        step(scale=1e38)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match='nonfinite must be one of'):
        linear_and_wrapper(nonfinite='ignore')
    with pytest.raises(ValueError, match='best_below_floor'):
        DivergenceHook(best_below_floor='drop')


# ---------------------------------------------------------------------------------------
# Below-floor validation metrics and non-finite checkpoints, on given numbers
# ---------------------------------------------------------------------------------------

HEALTHY = {'denoise/psnr@0.1': 25.0, 'denoise/noisy_psnr@0.1': 16.5,
           'denoise/mse@0.1': 200.0, 'denoise/noisy_mse@0.1': 1500.0,
           'denoise/ssim@0.1': 0.8, 'denoise/noisy_ssim@0.1': 0.5,
           'nextframe/smooth_l1': 0.1, 'nextframe/copy_last_smooth_l1': 0.2,
           'thinking/energy@0.1': -3.0}
DIVERGED = {'denoise/psnr@0.1': 4.78, 'denoise/noisy_psnr@0.1': 16.5,
            'denoise/psnr@0.2': float('nan'), 'denoise/noisy_psnr@0.2': 11.6,
            'denoise/mse@0.1': 2e4, 'denoise/noisy_mse@0.1': 1500.0,
            'nextframe/mse': 0.5, 'nextframe/copy_last_mse': 0.3, 'thinking/energy@0.1': 9.0}


def test_below_floor_compares_each_metric_with_its_baseline():
    assert below_floor(HEALTHY) == []
    found = {finding.key: finding for finding in below_floor(DIVERGED)}
    assert set(found) == {'denoise/psnr@0.1', 'denoise/psnr@0.2', 'denoise/mse@0.1',
                          'nextframe/mse'}
    assert str(found['denoise/psnr@0.1']) == 'denoise/psnr@0.1 = 4.78 < ' \
        'denoise/noisy_psnr@0.1 = 16.5'
    assert str(found['denoise/mse@0.1']).startswith('denoise/mse@0.1 = 2e+04 > ')
    assert 'repeating the last frame' in found['nextframe/mse'].meaning


@pytest.fixture
def log_file(tmp_path):
    path = str(tmp_path / 'run.log')
    MMLogger.get_instance(f'divergence_{tmp_path.name}', log_file=path)  # now 'current'
    return path


@pytest.mark.parametrize('mode', ['warn', 'skip'])
def test_hook_warns_when_validation_is_below_the_floor(log_file, mode):
    best = CheckpointHook(interval=1, save_best='denoise/psnr@0.1', rule='greater')
    runner = SimpleNamespace(iter=200, hooks=[best])
    hook = DivergenceHook(best_below_floor=mode)
    hook.after_val_epoch(runner, dict(HEALTHY))
    assert 'WARNING' not in open(log_file).read()
    metrics = dict(DIVERGED)
    hook.after_val_epoch(runner, metrics)
    text = open(log_file).read()
    assert ('WARNING - Validation at iteration 200: the model makes the images worse than the '
            'noisy input (likely diverged or untrained): denoise/psnr@0.1 = 4.78 < '
            'denoise/noisy_psnr@0.1 = 16.5;') in text
    assert 'the model predicts worse than repeating the last frame' in text
    if mode == 'skip':  # CheckpointHook skips a None score: never the "best"
        assert metrics['denoise/psnr@0.1'] is None and 'Not saved as the best' in text
    else:
        assert metrics['denoise/psnr@0.1'] == 4.78 and 'is worse than that baseline' in text


def test_checkpoint_with_nonfinite_weights_is_refused(log_file):
    state = {'a.weight': torch.ones(2), 'b.bias': torch.tensor([1.0, float('inf')]),
             'steps': torch.tensor([3]), 'extra': {'not': 'a tensor'}}
    assert nonfinite_weights(state) == ['b.bias']
    runner = SimpleNamespace(iter=4, model=None, optim_wrapper=None)
    hook = DivergenceHook()
    hook.before_save_checkpoint(runner, {'state_dict': {'a.weight': torch.ones(2)}})
    with pytest.raises(NonFiniteError, match=r'refusing to save a checkpoint after iteration 5:'
                       r' 1 of 4 weight tensors are non-finite \(b.bias\)'):
        hook.before_save_checkpoint(runner, {'state_dict': state, 'meta': {'iter': 5}})
    assert 'ERROR' in open(log_file).read()
    DivergenceHook(check_checkpoints=False).before_save_checkpoint(runner, {'state_dict': state})


def test_enable_divergence_checks():
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD')),
                      custom_hooks=[dict(type='DenoiseVisualizationHook')]))
    enable_divergence_checks(enable_divergence_checks(cfg))
    assert cfg.optim_wrapper.type == 'FiniteCheckOptimWrapper'
    assert [hook['type'] for hook in cfg.custom_hooks] == ['DenoiseVisualizationHook',
                                                            'DivergenceHook']
    amp = enable_divergence_checks(Config(dict(optim_wrapper=dict(type='AmpOptimWrapper'))))
    assert amp.optim_wrapper.type == 'FiniteCheckAmpOptimWrapper'
    unset = enable_divergence_checks(Config(dict(optim_wrapper=dict(optimizer=dict()))))
    assert unset.optim_wrapper.type == 'FiniteCheckOptimWrapper'
    other = enable_divergence_checks(Config(dict(optim_wrapper=dict(type='MyWrapper'))))
    assert other.optim_wrapper.type == 'MyWrapper'
    assert enable_divergence_checks(Config(dict())).custom_hooks == [dict(type='DivergenceHook')]
    for wrong in (dict(nonfinite='ignore'), dict(max_consecutive_skips=-1),
                  dict(max_loss_ratio=0.5)):
        with pytest.raises(ValueError, match=f'optim_wrapper.{next(iter(wrong))} must be'):
            enable_divergence_checks(Config(dict(optim_wrapper=wrong)))


# ---------------------------------------------------------------------------------------
# Real runs of a tiny EBT denoiser
# ---------------------------------------------------------------------------------------


def tiny_runner(tiny_config, tmp_path, name, protect=True, hooks=(), **options):
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(tiny_config('ebt'))
    cfg.merge_from_dict(options)
    cfg.work_dir = str(tmp_path / name)
    cfg.experiment_name = f'{name}_{tmp_path.name}'  # a logger (and log file) of its own
    cfg.custom_hooks = list(cfg.custom_hooks) + list(hooks)
    if protect:
        enable_divergence_checks(cfg)
    return Runner.from_cfg(cfg)


def log_text(work_dir) -> str:
    return ''.join(open(path).read() for path in glob.glob(osp.join(work_dir, '*', '*.log')))


def checkpoints(work_dir):
    return sorted(osp.basename(path) for path in glob.glob(osp.join(work_dir, '*.pth')))


@pytest.mark.parametrize('alpha,message', [
    (1e12, 'iteration 2: the loss is .* more than optim_wrapper.max_loss_ratio=1e\\+04 times'),
    (1e38, 'iteration 1: the gradient norm is inf'),
])
def test_too_large_thinking_step_size_stops_training(tiny_config, tmp_path, alpha, message):
    runner = tiny_runner(tiny_config, tmp_path, 'run', **{
        'model.thinker.alpha': alpha, 'model.thinker.learnable_alpha': False})
    with pytest.raises(NonFiniteError, match=message) as error:
        runner.train()
    assert 'model.thinker.alpha (now ' in str(error.value) and '\n' not in str(error.value)
    assert str(error.value) in log_text(runner.work_dir)  # the work dir's log has it too
    assert checkpoints(runner.work_dir) == []


class RecordWeights(Hook):
    """Keeps the weights at the start and after every iteration."""

    def __init__(self):
        self.weights = []

    def _keep(self, runner):
        self.weights.append({key: value.detach().clone()
                             for key, value in runner.model.state_dict().items()})

    def before_train(self, runner):
        self._keep(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._keep(runner)


def test_skip_mode_run_keeps_the_weights_and_finishes(tiny_config, tmp_path):
    recorder = RecordWeights()
    runner = tiny_runner(tiny_config, tmp_path, 'skip', **{
        'model.thinker.alpha': 1e38, 'model.thinker.learnable_alpha': False,
        'optim_wrapper.nonfinite': 'skip', 'optim_wrapper.max_consecutive_skips': 10})
    runner.register_hook(recorder)
    runner.train()
    assert len(recorder.weights) == 5  # start + 4 iterations, all skipped
    for weights in recorder.weights[1:]:
        for key, value in weights.items():
            torch.testing.assert_close(value, recorder.weights[0][key], rtol=0, atol=0)
    assert runner.optim_wrapper.skipped_steps == 4
    text = log_text(runner.work_dir)
    assert 'iteration 4: the gradient norm is inf (non-finite); skipped this optimizer step ' \
        '(parameters unchanged): 4 in a row, 4 in total' in text
    assert 'skipped_steps: 4' in text  # in the training log line
    assert 'iter_4.pth' in checkpoints(runner.work_dir)


class PoisonWeights(Hook):
    """Puts a NaN into one weight after iteration ``at`` (just before CheckpointHook)."""

    priority = 'LOW'

    def __init__(self, at: int):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                next(runner.model.parameters()).view(-1)[0] = float('nan')


def test_nonfinite_weights_are_never_checkpointed(tiny_config, tmp_path):
    runner = tiny_runner(tiny_config, tmp_path, 'poisoned')
    runner.register_hook(PoisonWeights(at=2))
    with pytest.raises(NonFiniteError, match='refusing to save a checkpoint after iteration 2: '
                       r'1 of \d+ weight tensors are non-finite \(backbone\.'):
        runner.train()
    assert checkpoints(runner.work_dir) == []  # iteration 2 was the first checkpoint
    assert not osp.exists(osp.join(runner.work_dir, 'last_checkpoint'))
    assert 'refusing to save a checkpoint' in log_text(runner.work_dir)


def test_diverged_run_is_flagged_at_validation_and_not_kept_as_best(tiny_config, tmp_path):
    # Exploding but finite with the loss check off: the validation shows the damage.
    runner = tiny_runner(tiny_config, tmp_path, 'floor', hooks=[
        dict(type='DivergenceHook', best_below_floor='skip')], **{
            'model.thinker.alpha': 1e12, 'model.thinker.learnable_alpha': False,
            'optim_wrapper.max_loss_ratio': None, 'train_cfg.max_iters': 2})
    runner.train()
    text = log_text(runner.work_dir)
    assert 'Validation at iteration 2: the model makes the images worse than the noisy input ' \
        '(likely diverged or untrained): denoise/psnr@0.1 = ' in text
    assert 'Not saved as the best checkpoint by denoise/psnr@0.1' in text
    assert checkpoints(runner.work_dir) == ['iter_2.pth']  # no best_*.pth


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_amp_runs_on_cuda(tiny_config, tmp_path):
    amp = {'optim_wrapper.type': 'AmpOptimWrapper', 'optim_wrapper.loss_scale': 'dynamic'}
    healthy = tiny_runner(tiny_config, tmp_path, 'amp', **amp)
    healthy.train()
    assert type(healthy.optim_wrapper).__name__ == 'FiniteCheckAmpOptimWrapper'
    assert healthy.optim_wrapper.consecutive_skips < 4
    diverged = tiny_runner(tiny_config, tmp_path, 'amp_diverged', **amp, **{
        'model.thinker.alpha': 1e38, 'model.thinker.learnable_alpha': False,
        'optim_wrapper.max_consecutive_skips': 2})
    with pytest.raises(NonFiniteError, match='iteration 3: .*3 steps in a row were skipped'):
        diverged.train()
