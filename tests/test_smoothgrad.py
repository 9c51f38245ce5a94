"""SmoothGrad over any method against Captum's NoiseTunnel: the same noise, the same averages."""
import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from small_nets import EPS32, gradient_rounding, small_net

from ig_core import AttributionEngine, method

pytestmark = pytest.mark.numeric


def captum_stdev(x, noise):
    """PAIR's stdev_spread: the noise's standard deviation is `noise` times the example's value range."""
    return float((x.max() - x.min()) * noise)


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_of_the_gradient_equals_captums_noise_tunnel(kind):
    net = small_net()
    x = torch.randn(1, 6)
    engine = AttributionEngine(device="cpu")
    ours = engine.attribute(net, x, 2, method="smoothgrad",
                            method_options=dict(samples=7, noise=0.2, kind=kind, seed=5)).attributions
    torch.manual_seed(5)  # our generator seeded with 5 draws the same normals, in the same order
    theirs = NoiseTunnel(Saliency(net)).attribute(x, target=2, nt_type=kind, nt_samples=7, abs=False,
                                                  stdevs=captum_stdev(x, 0.2))
    gradients = gradient_rounding(net)
    scale = float(theirs.abs().max()) if kind == "smoothgrad" else 2 * float(theirs.abs().max() + 1)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=gradients * scale * 7)


def test_smoothgrad_over_integrated_gradients_keeps_completeness_against_the_mean_noisy_score():
    net = small_net()
    x = torch.randn(2, 6)
    engine = AttributionEngine(device="cpu")
    smooth = engine.attribute(net, x, [0, 1], steps=64, rule="gauss-legendre", output="softmax", method="smoothgrad",
                              method_options=dict(base="integrated_gradients", samples=4, seed=1))
    assert smooth.completeness == "mean F(noisy input) - F(baseline)"
    chosen = method("smoothgrad", base="integrated_gradients", samples=4, seed=1)
    copies = chosen.noisy_inputs((x,))[0]  # [2 * 4, 6], example-major
    with torch.no_grad():
        noisy_scores = torch.softmax(net(copies), -1)[:, :2].reshape(2, 4, 2).mean(1).double().numpy()
    np.testing.assert_allclose(smooth.score_input, noisy_scores, rtol=0, atol=8 * EPS32)
    totals = smooth.attributions_per_target[0].double().sum(-1).T.numpy()  # [N, T]
    np.testing.assert_allclose(totals - (smooth.score_input - smooth.score_baseline), smooth.delta, atol=1e-12)
    assert smooth.max_relative_delta < 1e-4  # 64 Gauss-Legendre nodes on a smooth net
    # and each copy's attributions are Captum's integrated gradients of that copy
    captum = IntegratedGradients(lambda z: torch.softmax(net(z), -1)).attribute(
        copies, target=0, n_steps=64, method="gausslegendre").reshape(2, 4, 6).mean(1)
    # each node's gradient rounds within the logits' bound (softmax's Jacobian rows sum to at most 1 in |.|), times
    # |x - b|; the 64-node sums and the mean over 4 copies add their own roundings
    rounding = gradient_rounding(net) * float(copies.abs().max()) + 68 * EPS32 * float(captum.abs().max())
    torch.testing.assert_close(smooth.attributions[0], captum, rtol=0, atol=rounding)


def test_squares_and_variances_define_no_completeness_and_bad_options_are_refused():
    assert method("smoothgrad", kind="vargrad").completeness is None
    assert method("smoothgrad", base="gradient").completeness is None  # the gradient has no completeness law
    with pytest.raises(ValueError, match="kind"):
        method("smoothgrad", kind="median")
    with pytest.raises(ValueError, match="itself"):
        method("smoothgrad", base="smoothgrad")
    with pytest.raises(ValueError, match="unknown method"):
        method("smoothgrad", base="lime")


def test_the_points_evaluated_count_every_noisy_copys_points_and_the_steps_stay_per_copy():
    net, x = small_net(), torch.randn(1, 6)
    engine = AttributionEngine(device="cpu")
    gradient = engine.attribute(net, x, 0, method="gradient")
    smooth = engine.attribute(net, x, 0, method="smoothgrad", method_options=dict(samples=25))
    assert smooth.points_evaluated == 25 * gradient.points_evaluated == 50  # the input and the baseline, per copy
    scan = engine.attribute(net, x, 0, steps=16, rule="trapezoid", method="integrated_gradients")
    smooth_scan = engine.attribute(net, x, 0, steps=16, rule="trapezoid", method="smoothgrad",
                                   method_options=dict(base="integrated_gradients", samples=3))
    assert smooth_scan.points_evaluated == 3 * scan.points_evaluated
    assert smooth_scan.steps_used == scan.steps_used == 16  # what the scan's rule and budget speak of
