"""NextFrameMetric: latent smooth-L1 / MSE, copy-last baseline, PSNR, padding."""
import torch
import torch.nn.functional as F

from ebtvision.evaluation import NextFrameMetric, psnr, to_uint8_scale
from ebtvision.structures import VideoDataSample


def sample(gt, pred, padded=0, **fields):
    data = VideoDataSample(metainfo=dict(num_padded=padded))
    data.gt_latents, data.pred_latents = gt, pred
    for key, value in fields.items():
        data.set_field(value, key)
    return data


def run(metric, samples):
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_frame_weighted_means_and_copy_last_baseline():
    torch.manual_seed(0)
    gt_a, gt_b = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3)
    pred_a, pred_b = gt_a[1:] + 0.1, torch.randn(4, 2, 3, 3) * 3
    metrics = run(NextFrameMetric(per_frame=True), [sample(gt_a, pred_a), sample(gt_b, pred_b)])
    preds, targets = torch.cat([pred_a, pred_b]), torch.cat([gt_a[1:], gt_b[1:]])
    expected = F.smooth_l1_loss(preds, targets)
    torch.testing.assert_close(torch.tensor(metrics['smooth_l1']), expected)
    torch.testing.assert_close(torch.tensor(metrics['mse']), F.mse_loss(preds, targets))
    copies = torch.cat([gt_a[:-1], gt_b[:-1]])
    torch.testing.assert_close(torch.tensor(metrics['copy_last_smooth_l1']),
                               F.smooth_l1_loss(copies, targets))
    first = F.smooth_l1_loss(torch.stack([pred_a[0], pred_b[0]]),
                             torch.stack([gt_a[1], gt_b[1]]))
    torch.testing.assert_close(torch.tensor(metrics['smooth_l1@1']), first)
    assert 'psnr' not in metrics and 'energy' not in metrics


def test_padded_frames_are_left_out():
    gt = torch.zeros(5, 1, 2, 2)
    pred = torch.zeros(4, 1, 2, 2)
    pred[2:] = 100.0  # wrong, but only on the two padded frames
    metrics = run(NextFrameMetric(), [sample(gt, pred, padded=2)])
    assert metrics['smooth_l1'] == 0.0 and metrics['mse'] == 0.0


def test_psnr_of_decoded_frames_and_energy():
    torch.manual_seed(1)
    gt_frames = torch.rand(4, 3, 8, 8) * 2 - 1
    pred_frames = (gt_frames[1:] + 0.05 * torch.randn(3, 3, 8, 8)).clamp(-1, 1)
    latents = torch.randn(4, 1, 2, 2)
    energies = torch.tensor([1.0, 2.0, 3.0])
    metrics = run(NextFrameMetric(), [sample(latents, latents[1:], gt_frames=gt_frames,
                                             pred_frames=pred_frames, energies=energies)])
    expected = psnr(to_uint8_scale(pred_frames), to_uint8_scale(gt_frames[1:])).mean()
    torch.testing.assert_close(torch.tensor(metrics['psnr']), expected)
    copy = psnr(to_uint8_scale(gt_frames[:-1]), to_uint8_scale(gt_frames[1:])).mean()
    torch.testing.assert_close(torch.tensor(metrics['copy_last_psnr']), copy)
    assert metrics['psnr'] > metrics['copy_last_psnr']
    assert metrics['energy'] == 2.0 and metrics['smooth_l1'] == 0.0
