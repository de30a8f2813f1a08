"""Linear probe on frozen features as an MMEngine test loop (docs/method.md#linear-probes).

``python tools/test.py configs/linear_probe/X.py CHECKPOINT`` with::

    test_cfg = dict(type='LinearProbeLoop', train_dataloader=dict(...),
                    classifier=dict(epochs=90, ...))
    test_dataloader = dict(...)          # the split the accuracy is reported on
    test_evaluator = dict(type='AccuracyMetric', topk=(1, 5))

extracts features of both splits with the frozen backbone (``model.extract_features``),
caches them on disk, trains ``model.head`` on the train features and evaluates it on the
test features through the configured evaluator.
"""
import copy
import io
import json
import math
import os.path as osp
import time
from typing import Any, Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.structures import BaseDataElement
from torch.utils.data import DataLoader
from tqdm import tqdm

from ebtvision.fileio import atomic_write
from ebtvision.registry import LOOPS
from .feature_cache import FeatureCache, feature_cache_key, plain_metainfo

# Defaults for a probe on frozen features. SGD with momentum and a cosine schedule is the
# standard recipe (MoCo/MAE-style probes); ``lr`` is given for batch 256 and scaled
# linearly with ``batch_size``. No weight decay: a linear layer on ~10^3-dim features
# barely overfits 1.28M images, and decay only lowers the already small accuracy of weak
# features. Standardising the features (MAE's BatchNorm without affine) makes one lr fit
# backbones whose feature scales differ by orders of magnitude (EBT vs DiT).
DEFAULT_CLASSIFIER = dict(
    optimizer='sgd',      # 'sgd' | 'adamw'
    lr=None,              # base lr at batch 256; None: 0.1 (sgd) or 1e-3 (adamw)
    momentum=0.9,         # sgd only
    weight_decay=0.0,
    epochs=90,            # ImageNet; quick-start configs use far fewer
    batch_size=256,
    normalize='standardize',  # 'standardize' | 'l2' | 'none'
    seed=0,
    lr_schedule='cosine',  # 'cosine' (per step, to 0) | 'constant'
    eval_batch_size=1024,
)
_DEFAULT_LR = dict(sgd=0.1, adamw=1e-3)
_NORM_EPS = 1e-6


def _classifier_cfg(classifier: Optional[dict]) -> dict:
    cfg = dict(DEFAULT_CLASSIFIER)
    unknown = set(classifier or {}) - set(cfg)
    if unknown:
        raise ValueError(f'unknown LinearProbeLoop classifier keys {sorted(unknown)}; '
                         f'known: {sorted(cfg)}')
    cfg.update(classifier or {})
    if cfg['optimizer'] not in _DEFAULT_LR:
        raise ValueError(f"classifier optimizer must be 'sgd' or 'adamw', not "
                         f"{cfg['optimizer']!r}")
    if cfg['normalize'] not in ('standardize', 'l2', 'none'):
        raise ValueError("classifier normalize must be 'standardize', 'l2' or 'none', not "
                         f"{cfg['normalize']!r}")
    if cfg['lr_schedule'] not in ('cosine', 'constant'):
        raise ValueError("classifier lr_schedule must be 'cosine' or 'constant', not "
                         f"{cfg['lr_schedule']!r}")
    if cfg['lr'] is None:
        cfg['lr'] = _DEFAULT_LR[cfg['optimizer']]
    return cfg


def normalization_stats(features: torch.Tensor, normalize: str) -> Dict[str, torch.Tensor]:
    """Per-feature mean/std of the train features ('standardize'), else empty."""
    if normalize != 'standardize':
        return {}
    mean = features.mean(0)
    std = (features.var(0, unbiased=False) + _NORM_EPS).sqrt()
    return dict(mean=mean, std=std)


def normalize_features(features: torch.Tensor, normalize: str,
                       stats: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply the probe's feature normalisation."""
    if normalize == 'standardize':
        return (features - stats['mean'].to(features)) / stats['std'].to(features)
    if normalize == 'l2':
        return F.normalize(features, dim=1)
    return features


def train_linear_classifier(features: torch.Tensor, labels: torch.Tensor, head: nn.Linear,
                            cfg: dict, logger=None, progress: bool = False) -> List[dict]:
    """Train ``head`` in place on (already normalised) features.

    The head is re-initialised from ``cfg['seed']`` (weights N(0, 0.01^2) truncated at 2
    std, bias 0, as MAE's probe head), so the result does not depend on what the model's
    head held before. Runs on the head's device.

    Args:
        features: (N, D) train features.
        labels: (N,) class indices.
        head: The linear layer to train.
        cfg: Classifier settings (see ``DEFAULT_CLASSIFIER``).
        logger: Where the per-epoch loss/accuracy go.
        progress: Show a progress bar over epochs.

    Returns:
        Per-epoch history: dicts with epoch, loss, acc, lr.
    """
    cfg = _classifier_cfg(cfg)
    device = head.weight.device
    generator = torch.Generator().manual_seed(int(cfg['seed']))
    with torch.no_grad():
        head.weight.copy_(nn.init.trunc_normal_(
            torch.empty(head.weight.shape), std=0.01, a=-0.02, b=0.02, generator=generator))
        if head.bias is not None:
            head.bias.zero_()
    x = features.to(device=device, dtype=torch.float32)
    y = labels.to(device=device, dtype=torch.long)
    num = x.shape[0]
    batch_size = min(int(cfg['batch_size']), num)
    lr = cfg['lr'] * batch_size / 256  # linear scaling rule
    params = list(head.parameters())
    if cfg['optimizer'] == 'sgd':
        optimizer = torch.optim.SGD(params, lr=lr, momentum=cfg['momentum'],
                                    weight_decay=cfg['weight_decay'])
    else:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg['weight_decay'])
    steps_per_epoch = math.ceil(num / batch_size)
    total = max(1, steps_per_epoch * int(cfg['epochs']))
    if cfg['lr_schedule'] == 'cosine':
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if logger is not None:
        logger.info(f'linear probe: {num} samples, {x.shape[1]} features, '
                    f'{head.out_features} classes; {cfg["optimizer"]} lr {lr:g} (base '
                    f'{cfg["lr"]:g} x {batch_size}/256), wd {cfg["weight_decay"]:g}, '
                    f'{cfg["epochs"]} epochs, {cfg["lr_schedule"]} schedule, '
                    f'normalize={cfg["normalize"]}')
    history = []
    head.train()
    with torch.enable_grad():  # the test loop may run under no_grad
        for epoch in tqdm(range(int(cfg['epochs'])), desc='probe: train', disable=not progress,
                          leave=False):
            order = torch.randperm(num, generator=generator).to(device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            current_lr = optimizer.param_groups[0]['lr']
            for start in range(0, num, batch_size):
                idx = order[start:start + batch_size]
                logits = head(x[idx])
                loss = F.cross_entropy(logits, y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach() * idx.numel()
                correct += (logits.detach().argmax(1) == y[idx]).sum()
            record = dict(epoch=epoch + 1, loss=float(loss_sum) / num,
                          acc=float(correct) / num, lr=current_lr)
            history.append(record)
            if logger is not None:
                logger.info(f'probe epoch {epoch + 1}/{cfg["epochs"]}: loss '
                            f'{record["loss"]:.4f}, train top-1 {100 * record["acc"]:.2f} %, '
                            f'lr {current_lr:.4g}')
    head.eval()
    return history


def fold_standardization(head: nn.Linear, stats: Dict[str, torch.Tensor]) -> None:
    """Make ``head`` act on raw features: W' = W / std, b' = b - W' mean (in place)."""
    with torch.no_grad():
        std = stats['std'].to(head.weight)
        mean = stats['mean'].to(head.weight)
        head.weight.div_(std)
        if head.bias is not None:
            head.bias.sub_(head.weight @ mean)


def _label_of(sample: Any) -> int:
    label = sample.get('gt_label') if hasattr(sample, 'get') else None
    if label is None:
        raise KeyError('LinearProbeLoop needs `gt_label` in every data sample (use a '
                       'classification dataset with PackClassifyInputs)')
    return int(torch.as_tensor(label).reshape(-1)[0])


@LOOPS.register_module()
class LinearProbeLoop(TestLoop):
    """Test loop that trains and evaluates a linear classifier on frozen features.

    ``run()``: (1) extract features of the probe's train split and of the test split with
    ``model.extract_features(model.data_preprocessor(batch)['inputs'])`` (eval mode,
    no_grad), caching them under ``cache_dir`` (see :mod:`.feature_cache`; a complete
    cache is reused without touching the backbone, an interrupted one resumes from its
    last chunk); (2) train ``model.head`` on the normalised train features; (3) score the
    test features (softmax of the head) and run the evaluator on them. The trained head
    (with the standardisation folded in) and the normalisation stats are saved to
    ``<work_dir>/probe_head.pth``, phase timings to ``<work_dir>/probe_timings.json``.

    Distributed: each rank extracts the shard its sampler gives; chunks are gathered to
    rank 0, which writes every file and trains the head; the head and the test features
    are broadcast, and each rank evaluates its share so the evaluator's collection works.

    Args:
        runner: The runner.
        dataloader: Test dataloader (or its config).
        evaluator: Test evaluator (or its config).
        train_dataloader: Dataloader config of the split the classifier is trained on (use
            ``DefaultSampler(shuffle=False)`` and no augmentation: features are cached once).
        classifier: Classifier settings, see ``DEFAULT_CLASSIFIER``.
        cache_dir: Feature cache folder; default ``<work_dir>/probe_features``.
        chunk_batches: Batches per rank between two cache writes (resume granularity).
        fp16: Extract features under autocast.
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict], evaluator,
                 train_dataloader: Union[DataLoader, Dict], classifier: Optional[dict] = None,
                 cache_dir: Optional[str] = None, chunk_batches: int = 50,
                 fp16: bool = False) -> None:
        # The dataset config keys the cache; keep it before the dataloader is built.
        self.test_dataset_cfg = copy.deepcopy(
            dataloader.get('dataset')) if isinstance(dataloader, dict) else None
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        if train_dataloader is None:
            raise ValueError('LinearProbeLoop needs `train_dataloader`: the split the linear '
                             'classifier is trained on')
        self.train_dataloader_cfg = train_dataloader  # built lazily: a cache may make it moot
        self.classifier_cfg = _classifier_cfg(classifier)
        self.cache_dir = cache_dir or osp.join(runner.work_dir, 'probe_features')
        if chunk_batches < 1:
            raise ValueError(f'chunk_batches must be >= 1, got {chunk_batches}')
        self.chunk_batches = int(chunk_batches)

    # ----------------------------------------------------------------- helpers
    @property
    def _model(self) -> nn.Module:
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def _log(self, msg: str) -> None:
        self.runner.logger.info(msg)

    def _dataset_cfg(self, dataloader: Any) -> Any:
        if isinstance(dataloader, dict):
            return dataloader.get('dataset')
        if dataloader is self.dataloader and self.test_dataset_cfg is not None:
            return self.test_dataset_cfg
        # A dataloader passed already built: only its class and size are known.
        dataset = dataloader.dataset
        return dict(type=f'{type(dataset).__module__}.{type(dataset).__qualname__}',
                    length=len(dataset))

    def _cache_key(self, dataset_cfg: Any) -> str:
        model_cfg = self.runner.cfg.get('model')
        if isinstance(model_cfg, dict):
            # The classifier head does not change the features.
            model_cfg = {k: v for k, v in model_cfg.items() if k not in ('head', 'num_classes')}
        else:
            model_cfg = type(self._model).__name__
        checkpoint = getattr(self.runner, '_load_from', None)
        # A random init (checkpoint 'none') depends on the seed.
        extra = None if checkpoint else dict(seed=self.runner.seed)
        return feature_cache_key(checkpoint, dataset_cfg, model_cfg, extra)

    # -------------------------------------------------------------- extraction
    def _features(self, split: str, dataloader: Union[DataLoader, dict],
                  keep_meta: bool) -> Optional[dict]:
        """Cached or freshly extracted features of one split (complete on rank 0)."""
        key = self._cache_key(self._dataset_cfg(dataloader))
        cache = FeatureCache(self.cache_dir, split, key)
        rank, world = dist.get_dist_info()
        complete = [cache.is_complete() if rank == 0 else None]
        dist.broadcast_object_list(complete)
        if complete[0]:
            self._log(f'probe {split}: reusing cached features {cache.path} (backbone not run)')
            return cache.load() if rank == 0 else None
        if isinstance(dataloader, dict):
            dataloader = self.runner.build_dataloader(dataloader, seed=self.runner.seed)
        self._extract(cache, dataloader, keep_meta)
        dist.barrier()
        data = cache.finalize(len(dataloader.dataset)) if rank == 0 else None
        if rank == 0:
            self._log(f'probe {split}: {data["num_samples"]} features cached in {cache.path}')
        return data

    @torch.no_grad()
    def _extract(self, cache: FeatureCache, dataloader: DataLoader, keep_meta: bool) -> None:
        rank, world = dist.get_dist_info()
        model = self._model
        model.eval()
        # Rank 0 knows what an interrupted run left behind; every rank skips it.
        state = [None]
        if rank == 0:
            chunks = cache.load_chunks()
            done = sorted({i for c in chunks for i in c['indices'].tolist()})
            numbers = [int(osp.basename(p)[6:11]) for p in cache.chunk_paths()]
            state = [dict(done=done, next_chunk=max(numbers, default=-1) + 1)]
            if done:
                self._log(f'probe {cache.split}: resuming extraction, {len(done)} samples '
                          f'already in {len(chunks)} chunks under {cache.parts_dir}')
        dist.broadcast_object_list(state)
        done = set(state[0]['done'])
        next_chunk = state[0]['next_chunk']
        # The sampler's order is this rank's shard (DefaultSampler: rank::world, padded).
        todo = [i for i in iter(dataloader.sampler) if i not in done]
        batch_size = dataloader.batch_size or 1
        loader = DataLoader(dataloader.dataset, batch_size=batch_size, sampler=todo,
                            num_workers=dataloader.num_workers,
                            collate_fn=dataloader.collate_fn,
                            pin_memory=dataloader.pin_memory)
        num_batches = math.ceil(len(todo) / batch_size)
        per_rank = dist.all_gather_object(math.ceil(num_batches / self.chunk_batches))
        num_chunks = max(per_rank) if world > 1 else per_rank[0]
        device_type = next(model.parameters()).device.type
        batches = iter(loader)
        position = 0
        bar = tqdm(total=num_batches, desc=f'probe: extract {cache.split}',
                   disable=rank != 0, leave=False)
        for chunk in range(num_chunks):
            feats, labels, metas, indices = [], [], [], []
            for _ in range(self.chunk_batches):
                batch = next(batches, None)
                if batch is None:
                    break
                data = model.data_preprocessor(batch, False)
                with torch.autocast(device_type, enabled=self.fp16):
                    out = model.extract_features(data['inputs'])
                samples = data.get('data_samples') or batch['data_samples']
                feats.append(out.float().cpu())
                labels.extend(_label_of(s) for s in samples)
                if keep_meta:
                    metas.extend(plain_metainfo(s.metainfo) for s in samples)
                indices.extend(todo[position:position + len(samples)])
                position += len(samples)
                bar.update(1)
            part = dict(
                features=torch.cat(feats) if feats else None,
                gt_label=torch.tensor(labels, dtype=torch.long),
                indices=torch.tensor(indices, dtype=torch.long),
                metainfo=metas if keep_meta else None)
            parts = dist.gather_object(part, dst=0) if world > 1 else [part]
            if rank == 0:
                parts = [p for p in parts if p['features'] is not None]
                if parts:
                    cache.write_chunk(
                        next_chunk + chunk, torch.cat([p['indices'] for p in parts]),
                        torch.cat([p['features'] for p in parts]),
                        torch.cat([p['gt_label'] for p in parts]),
                        sum((p['metainfo'] for p in parts), []) if keep_meta else None)
        bar.close()

    # --------------------------------------------------------------------- run
    def run(self) -> dict:
        """Extract (or reuse) features, train the head, evaluate; returns the metrics."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        rank, world = dist.get_dist_info()
        model = self._model
        model.eval()
        head = getattr(model, 'head', None)
        if not isinstance(head, nn.Linear) or not hasattr(model, 'extract_features'):
            raise TypeError(f'LinearProbeLoop needs a model with extract_features() and an '
                            f'nn.Linear `head` (e.g. LinearProbe), got {type(model).__name__}')
        timings: Dict[str, float] = {}

        start = time.perf_counter()
        train = self._features('train', self.train_dataloader_cfg, keep_meta=False)
        timings['extract_train_s'] = time.perf_counter() - start
        start = time.perf_counter()
        test = self._features('test', self.dataloader, keep_meta=True)
        timings['extract_test_s'] = time.perf_counter() - start

        cfg = self.classifier_cfg
        start = time.perf_counter()
        payload = [None]
        if rank == 0:
            if int(train['gt_label'].max()) >= head.out_features or int(
                    train['gt_label'].min()) < 0:
                raise ValueError(f'labels span [{int(train["gt_label"].min())}, '
                                 f'{int(train["gt_label"].max())}] but the head has '
                                 f'{head.out_features} classes')
            stats = normalization_stats(train['features'], cfg['normalize'])
            x = normalize_features(train['features'], cfg['normalize'], stats)
            history = train_linear_classifier(x, train['gt_label'], head, cfg,
                                              self.runner.logger, progress=True)
            del x, train
            if cfg['normalize'] == 'standardize':
                fold_standardization(head, stats)
            payload = [dict(head={k: v.cpu() for k, v in head.state_dict().items()},
                            stats=stats, history=history, test=test)]
        # One trained head everywhere; test features follow so each rank scores its share.
        dist.broadcast_object_list(payload)
        head.load_state_dict(payload[0]['head'])
        test = payload[0]['test']
        timings['train_s'] = time.perf_counter() - start

        start = time.perf_counter()
        metrics = self._evaluate(head, test, cfg['normalize'], rank, world)
        timings['eval_s'] = time.perf_counter() - start

        self._log('probe timings: ' + ', '.join(f'{k} {v:.1f}' for k, v in timings.items()))
        if rank == 0:
            self._save(payload[0], cfg, timings)
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @torch.no_grad()
    def _evaluate(self, head: nn.Linear, test: dict, normalize: str, rank: int,
                  world: int) -> dict:
        num = test['num_samples']
        # rank::world: the evaluator's collect_results interleaves ranks back in order.
        mine = torch.arange(rank, num, world)
        step = int(self.classifier_cfg['eval_batch_size'])
        device = head.weight.device
        for start in range(0, len(mine), step):
            idx = mine[start:start + step]
            # The standardisation is folded into the head; only l2 remains to apply.
            x = normalize_features(test['features'][idx].to(device), normalize
                                   if normalize == 'l2' else 'none', {})
            scores = head(x).softmax(1).cpu()
            samples = []
            for i, score in zip(idx.tolist(), scores):
                meta = dict(test['metainfo'][i] or {})
                meta['gt_label'] = int(test['gt_label'][i])
                meta.setdefault('sample_idx', i)
                sample = BaseDataElement(metainfo=meta)
                sample.pred_score = score
                samples.append(sample)
            self.evaluator.process(data_samples=samples, data_batch=None)
        return self.evaluator.evaluate(num)

    def _save(self, payload: dict, cfg: dict, timings: dict) -> None:
        work_dir = self.runner.work_dir
        buffer = io.BytesIO()
        torch.save(dict(head=payload['head'], normalize=cfg['normalize'],
                        folded_standardization=cfg['normalize'] == 'standardize',
                        stats={k: v.cpu() for k, v in payload['stats'].items()},
                        classifier={k: v for k, v in cfg.items()},
                        history=payload['history']), buffer)
        atomic_write(buffer.getvalue(), osp.join(work_dir, 'probe_head.pth'))
        atomic_write(json.dumps(timings, indent=2).encode(),
                     osp.join(work_dir, 'probe_timings.json'))
