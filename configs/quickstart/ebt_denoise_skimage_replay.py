# The denoising quick-start with a replay buffer (System 2 regulariser; the reference code
# has none for images): half of each batch restarts from the model's own earlier predictions
# of 64 buffered crops, so it learns to refine good candidates further (longer effective
# trajectories at no extra cost per step). mode='replace' swaps them in for half of the batch
# (the results in the README were measured so); the reference's video and text jobs append
# them to the full batch instead (mode='append', the ReplayBuffer default).
#   python tools/train.py configs/quickstart/ebt_denoise_skimage_replay.py
_base_ = ['./ebt_denoise_skimage.py']

model = dict(replay_buffer=dict(type='ReplayBuffer', capacity=64, replay_fraction=0.5, seed=0,
                                mode='replace'))
