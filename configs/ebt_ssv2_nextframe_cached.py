# configs/ebt_ssv2_nextframe.py trained from the latent cache: every clip is encoded
# once by the frozen SD VAE, then training reads 4x28x28 latents instead of decoding and
# encoding 17 frames per clip (tools/benchmark/video_train_speed.py measures the gain).
#   python tools/extract_latents.py configs/ebt_ssv2_nextframe.py    # once; resumable
#   python tools/train.py configs/ebt_ssv2_nextframe_cached.py
# Same model, clips (0.25 s, 17 frames, random start in training) and schedule; the
# losses equal on-the-fly encoding for the same clips (tested). The cache stores what
# the extracting config's encoder outputs (here unscaled latent means; index.json records
# that encoder config): the datasets check it against this config's model.encoder.
_base_ = ['ebt_ssv2_nextframe.py']

cache_dir = 'data/ssv2/latents/ebt_ssv2_nextframe'
_clip = dict(type='LatentClipDataset', cache_dir=cache_dir, clip_len=17,
             time_between_frames=0.25, short_video='pad', min_frames=2,
             encoder={{_base_.model.encoder}})

train_dataloader = dict(
    dataset=dict(_delete_=True, split='train', clip_start='random', **_clip))
val_dataloader = dict(
    dataset=dict(_delete_=True, split='val', clip_start='first', test_mode=True,
                 indices=2000, **_clip))
test_dataloader = dict(
    dataset=dict(_delete_=True, split='test', clip_start='first', test_mode=True, **_clip))

data_hint = ('The latent cache is built from the SSv2 videos: put them under data/ssv2/ '
             '(see configs/ebt_ssv2_nextframe.py) and run '
             'python tools/extract_latents.py configs/ebt_ssv2_nextframe.py')
