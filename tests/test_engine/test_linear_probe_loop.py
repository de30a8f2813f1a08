"""LinearProbeLoop: features, cache (reuse, resume, keys), classifier, Runner end to end.

A tiny stand-in probe model (fixed random linear "backbone" on 3x8x8 images) and a toy
dataset of 6 well-separated classes: a linear probe must reach ~100 % top-1.
"""
import json
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

from ebtvision.engine.loops import FeatureCache, LinearProbeLoop, feature_cache_key
from ebtvision.engine.loops.linear_probe_loop import (fold_standardization,
                                                      normalization_stats,
                                                      normalize_features,
                                                      train_linear_classifier)
from ebtvision.registry import DATASETS, METRICS

NUM_CLASSES = 6


@DATASETS.register_module(name='ToyProbeDataset', force=True)
class ToyProbeDataset(Dataset):
    """``num`` images (3, 8, 8): a per-class pattern plus small noise."""

    def __init__(self, num: int = 96, seed: int = 0):
        means = torch.randn(NUM_CLASSES, 3, 8, 8, generator=torch.Generator().manual_seed(7))
        gen = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(num) % NUM_CLASSES
        self.images = means[self.labels] + 0.1 * torch.randn(num, 3, 8, 8, generator=gen)
        self.metainfo = dict(classes=[f'c{i}' for i in range(NUM_CLASSES)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        sample = BaseDataElement(metainfo=dict(gt_label=int(self.labels[index]),
                                               img_path=f'img_{index}.png'))
        return dict(inputs=self.images[index], data_samples=sample)


@METRICS.register_module(name='ToyProbeAccuracy', force=True)
class ToyProbeAccuracy(BaseMetric):
    """Stand-in for AccuracyMetric: top-1/top-5 from pred_score and gt_label."""
    default_prefix = 'probe'

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append((sample['pred_score'], int(sample['gt_label'])))

    def compute_metrics(self, results):
        scores = torch.stack([r[0] for r in results])
        labels = torch.tensor([r[1] for r in results])
        top5 = scores.topk(5, dim=1).indices
        return dict(top1=100.0 * (top5[:, 0] == labels).float().mean().item(),
                    top5=100.0 * (top5 == labels[:, None]).any(1).float().mean().item())


class ToyProbeModel(BaseModel):
    """Frozen random linear backbone + linear head; counts backbone calls."""

    def __init__(self, fail_after: int = None):
        super().__init__(data_preprocessor=dict(type='ImgDataPreprocessor'))
        self.backbone = nn.Linear(3 * 8 * 8, 16)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(3)
            self.backbone.weight.copy_(torch.randn(16, 192, generator=gen) / 192**0.5)
            self.backbone.bias.zero_()
        self.num_features = 16
        self.head = nn.Linear(16, NUM_CLASSES)
        self.calls = 0
        self.fail_after = fail_after

    def extract_features(self, inputs):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt('simulated interruption')
        self.calls += 1
        return self.backbone(inputs.flatten(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode != 'tensor':
            raise ValueError(f'unsupported mode {mode}')
        return self.head(self.extract_features(inputs))


def _loader(num, seed, batch_size=8):
    return dict(batch_size=batch_size, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(type='ToyProbeDataset', num=num, seed=seed))


_RUNS = iter(range(10**6))


def _runner(work_dir, model, classifier=None, **loop_kwargs):
    return Runner(
        model=model, work_dir=str(work_dir), default_scope='ebtvision',
        experiment_name=f'probe_test_{os.getpid()}_{next(_RUNS)}',
        randomness=dict(seed=0), env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING',
        test_dataloader=_loader(48, seed=1),
        test_evaluator=dict(type='ToyProbeAccuracy'),
        test_cfg=dict(type='LinearProbeLoop', train_dataloader=_loader(96, seed=0),
                      classifier=classifier or dict(epochs=15, batch_size=32), **loop_kwargs))


def _cache_files(work_dir):
    return sorted(os.listdir(osp.join(str(work_dir), 'probe_features')))


def test_runner_probe_separable_and_cache_reuse(tmp_path):
    model = ToyProbeModel()
    runner = _runner(tmp_path, model)
    metrics = runner.test()
    assert isinstance(runner.test_loop, LinearProbeLoop)
    assert metrics['probe/top1'] == pytest.approx(100.0)
    assert metrics['probe/top5'] == pytest.approx(100.0)
    assert model.calls == 96 // 8 + 48 // 8
    files = _cache_files(tmp_path)
    assert len(files) == 2 and files[0].startswith('test_') and files[1].startswith('train_')
    test_cache = torch.load(osp.join(tmp_path, 'probe_features', files[0]), weights_only=True)
    assert test_cache['features'].shape == (48, 16)
    assert test_cache['gt_label'].tolist() == (torch.arange(48) % NUM_CLASSES).tolist()
    assert test_cache['metainfo'][5]['img_path'] == 'img_5.png'
    head = torch.load(osp.join(tmp_path, 'probe_head.pth'), weights_only=True)
    assert head['normalize'] == 'standardize' and head['stats']['mean'].shape == (16, )
    assert torch.equal(head['head']['weight'], model.head.weight.detach())
    timings = json.load(open(osp.join(tmp_path, 'probe_timings.json')))
    assert set(timings) == {'extract_train_s', 'extract_test_s', 'train_s', 'eval_s'}

    # Second run: the same checkpoint/data/model reuse the cache; the backbone never runs.
    model2 = ToyProbeModel()
    metrics2 = _runner(tmp_path, model2).test()
    assert model2.calls == 0
    assert metrics2 == pytest.approx(metrics)


def test_interrupted_extraction_resumes_identically(tmp_path):
    reference = ToyProbeModel()
    _runner(tmp_path / 'ref', reference, chunk_batches=2).test()

    broken = ToyProbeModel(fail_after=5)  # 12 train batches: chunks of 2 -> 2 chunks kept
    with pytest.raises(KeyboardInterrupt):
        _runner(tmp_path / 'run', broken, chunk_batches=2).test()
    parts = [f for f in _cache_files(tmp_path / 'run') if f.endswith('.parts')]
    assert len(parts) == 1
    assert len(os.listdir(osp.join(tmp_path, 'run', 'probe_features', parts[0]))) == 2

    resumed = ToyProbeModel()
    _runner(tmp_path / 'run', resumed, chunk_batches=2).test()
    assert resumed.calls == (12 - 4) + 6  # the 4 cached train batches are not redone
    assert not any(f.endswith('.parts') for f in _cache_files(tmp_path / 'run'))
    for name in _cache_files(tmp_path / 'ref'):
        ref = torch.load(osp.join(tmp_path, 'ref', 'probe_features', name), weights_only=True)
        got = torch.load(osp.join(tmp_path, 'run', 'probe_features', name), weights_only=True)
        assert torch.equal(ref['features'], got['features'])
        assert torch.equal(ref['gt_label'], got['gt_label'])


def test_cache_key_changes_with_checkpoint_data_and_model(tmp_path):
    ckpt = tmp_path / 'a.pth'
    ckpt.write_bytes(b'1234')
    data = dict(type='ImageNetDataset', split='val', pipeline=[dict(type='Resize', size=128)])
    model = dict(type='LinearProbe', backbone=dict(depth=6), head=dict(num_classes=1000))
    key = feature_cache_key(str(ckpt), data, model)
    assert key == feature_cache_key(str(ckpt), dict(data), dict(model))
    other = tmp_path / 'b.pth'
    other.write_bytes(b'1234')
    assert feature_cache_key(str(other), data, model) != key
    ckpt.write_bytes(b'12345')  # retrained at the same path: size/mtime change
    assert feature_cache_key(str(ckpt), data, model) != key
    key = feature_cache_key(str(ckpt), data, model)
    assert feature_cache_key(str(ckpt), dict(data, split='train'), model) != key
    resized = dict(data, pipeline=[dict(type='Resize', size=224)])
    assert feature_cache_key(str(ckpt), resized, model) != key
    assert feature_cache_key(str(ckpt), data, dict(model, backbone=dict(depth=12))) != key
    assert feature_cache_key(None, data, model) != key


def test_feature_cache_refuses_missing_samples(tmp_path):
    cache = FeatureCache(str(tmp_path), 'train', 'k')
    cache.write_chunk(0, torch.tensor([0, 2]), torch.ones(2, 3), torch.tensor([1, 1]), None)
    with pytest.raises(RuntimeError, match='missing'):
        cache.finalize(3)
    cache.write_chunk(1, torch.tensor([1]), torch.zeros(1, 3), torch.tensor([0]), None)
    data = cache.finalize(3)
    assert data['features'][:, 0].tolist() == [1, 0, 1] and cache.is_complete()


@pytest.mark.parametrize('normalize', ['standardize', 'l2', 'none'])
def test_classifier_normalizations(normalize):
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    # Separable by direction, with a large common offset and an odd scale.
    directions = torch.randn(3, 8, generator=gen)
    features = 5 * directions[labels] + 0.2 * torch.randn(300, 8, generator=gen) + 20.0
    stats = normalization_stats(features, normalize)
    x = normalize_features(features, normalize, stats)
    if normalize == 'standardize':
        assert x.mean(0).abs().max() < 1e-4 and (x.std(0, unbiased=False) - 1).abs().max() < 1e-3
    elif normalize == 'l2':
        assert torch.allclose(x.norm(dim=1), torch.ones(300))
    head = nn.Linear(8, 3)
    history = train_linear_classifier(
        x, labels, head, dict(epochs=20, batch_size=64, normalize=normalize,
                              optimizer='adamw' if normalize == 'none' else 'sgd'))
    assert len(history) == 20 and history[-1]['lr'] < history[0]['lr']
    assert (head(x).argmax(1) == labels).float().mean() > 0.95
    if normalize == 'standardize':
        logits = head(x)
        fold_standardization(head, stats)
        assert torch.allclose(head(features), logits, atol=1e-4)


def test_classifier_is_seeded_and_validated():
    x, y = torch.randn(64, 4), torch.arange(64) % 2
    heads = [nn.Linear(4, 2), nn.Linear(4, 2)]
    for head in heads:
        train_linear_classifier(x, y, head, dict(epochs=2, batch_size=16, seed=3))
    assert torch.equal(heads[0].weight, heads[1].weight)
    with pytest.raises(ValueError, match='unknown'):
        train_linear_classifier(x, y, heads[0], dict(epochs=1, lr_rate=0.1))
    with pytest.raises(ValueError, match='normalize'):
        train_linear_classifier(x, y, heads[0], dict(normalize='bn'))


def _dist_worker(rank, world, port, work_dir, out):
    import torch.distributed as torch_dist
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                                  world_size=world)
    try:
        model = ToyProbeModel(fail_after=3 if out is None else None)
        runner = Runner(
            model=model, work_dir=work_dir, default_scope='ebtvision',
            experiment_name=f'probe_dist_{rank}_{out is None}', randomness=dict(seed=0),
            log_level='WARNING', test_dataloader=_loader(45, seed=1, batch_size=4),
            test_evaluator=dict(type='ToyProbeAccuracy'),
            test_cfg=dict(type='LinearProbeLoop', train_dataloader=_loader(93, 0, 4),
                          classifier=dict(epochs=15, batch_size=32), chunk_batches=2))
        try:
            metrics = runner.test()
        except KeyboardInterrupt:
            return
        torch.save(dict(metrics=metrics, weight=model.head.weight.detach()),
                   f'{out}.{rank}')
    finally:
        torch_dist.destroy_process_group()


def test_distributed_two_ranks_match_single_process(tmp_path):
    """Two gloo ranks (odd dataset sizes: padded shards), interrupted then resumed."""
    import socket

    import torch.multiprocessing as mp
    single = ToyProbeModel()
    metrics = Runner(
        model=single, work_dir=str(tmp_path / 'single'), default_scope='ebtvision',
        experiment_name=f'probe_single_{os.getpid()}', randomness=dict(seed=0),
        log_level='WARNING', test_dataloader=_loader(45, seed=1, batch_size=4),
        test_evaluator=dict(type='ToyProbeAccuracy'),
        test_cfg=dict(type='LinearProbeLoop', train_dataloader=_loader(93, 0, 4),
                      classifier=dict(epochs=15, batch_size=32))).test()
    for out in (None, str(tmp_path / 'result')):  # first run is interrupted
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        # fork: no re-import of torch + mmengine per rank (spawn costs ~5 s each here).
        mp.start_processes(_dist_worker, args=(2, port, str(tmp_path / 'dist'), out),
                           nprocs=2, start_method='fork')
    for rank in range(2):
        got = torch.load(f'{tmp_path}/result.{rank}', weights_only=True)
        assert got['metrics'] == pytest.approx(metrics)
        assert torch.allclose(got['weight'], single.head.weight.detach(), atol=1e-5)
    for name in _cache_files(tmp_path / 'single'):
        ref = torch.load(osp.join(tmp_path, 'single', 'probe_features', name),
                         weights_only=True)
        got = torch.load(osp.join(tmp_path, 'dist', 'probe_features', name), weights_only=True)
        assert torch.allclose(ref['features'], got['features'], atol=1e-6)
        assert torch.equal(ref['gt_label'], got['gt_label'])
