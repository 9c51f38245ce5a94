"""Expected gradients against Captum (integrated gradients per reference, GradientShap), closed forms and its
completeness law F(input) - mean F(reference)."""
import numpy as np
import pytest
import torch
from captum.attr import GradientShap, IntegratedGradients

from ig_core import AttributionEngine

EPS = torch.finfo(torch.float32).eps  # tolerances are multiples of the rounding of the terms involved
pytestmark = pytest.mark.numeric


def tanh_net(inputs=6, hidden=16, classes=4, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, classes))


def forward_size(net, points):
    """Per point, a bound on the |terms| of the tanh net's float sums (|tanh(z)| <= |z|): |W|, |b| on |x|."""
    return (points.abs() @ net[0].weight.abs().T + net[0].bias.abs()) @ net[2].weight.abs().T + net[2].bias.abs()


def gradient_bound(net):
    """Per feature, the sum of |terms| of any gradient of a tanh net (|tanh'| <= 1): |W2| |W1|, [classes, inputs]."""
    return net[2].weight.abs() @ net[0].weight.abs()


class TwoInputs(torch.nn.Module):
    """The tanh net on the concatenation of two inputs, as a model of two inputs."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, first, second):
        return self.net(torch.cat([first, second], dim=1))


@pytest.mark.parametrize("two_inputs", [False, True])
def test_every_reference_once_is_the_mean_of_captum_integrated_gradients(two_inputs):
    net, steps, targets = tanh_net(), 12, [0, 2]
    torch.manual_seed(1)
    x, references = torch.randn(3, 6), torch.randn(4, 6)
    model, inputs, refs = net, x, references
    if two_inputs:
        model, inputs, refs = TwoInputs(net), (x[:, :2], x[:, 2:]), (references[:, :2], references[:, 2:])
    result = AttributionEngine(device="cpu", max_batch=64).attribute(
        model, inputs, targets, baseline=refs, steps=steps, rule="gauss-legendre", method="expected_gradients")
    captum_ig = IntegratedGradients(model)
    ours = torch.cat(result.attributions, dim=-1) if two_inputs else result.attributions
    for j, target in enumerate(targets):
        per_reference = []
        for r in range(len(references)):
            baseline = tuple(part[r:r + 1] for part in refs) if two_inputs else refs[r:r + 1]
            ig = captum_ig.attribute(inputs, baselines=baseline, target=target, n_steps=steps, method="gausslegendre")
            per_reference.append(torch.cat(ig, dim=-1) if two_inputs else ig)
        expected = torch.stack(per_reference).mean(0)
        # per reference (x - r) * sum_k w_k g_k: each gradient is a sum of terms bounded by gradient_bound, both
        # sides round it (a few eps) and sum `steps` of them in another order (steps eps): (steps + 8) eps of the terms
        spread = (x.unsqueeze(0) - references.unsqueeze(1)).abs().mean(0)
        tolerance = (steps + 8) * EPS * spread * gradient_bound(net)[target]
        assert torch.all((ours[j] - expected).abs() <= tolerance)
    assert result.extras["references"] == len(references)
    assert result.completeness == "F(input) - mean F(reference)"


def test_agrees_with_captum_gradient_shap_within_its_monte_carlo_noise():
    net, samples, target = tanh_net(seed=3), 4000, 1
    torch.manual_seed(4)
    x, references = torch.randn(2, 6), torch.randn(5, 6)
    # the exact integral per reference: Gauss-Legendre converges spectrally on a tanh net
    ours = AttributionEngine(device="cpu", max_batch=64).attribute(
        net, x, target, baseline=references, steps=32, rule="gauss-legendre", method="expected_gradients").attributions
    torch.manual_seed(5)
    np.random.seed(5)  # Captum draws references and alphas with numpy
    estimate = GradientShap(net).attribute(x, baselines=references, target=target, n_samples=samples,
                                           stdevs=0.0).double()
    # its per-sample terms: one sample per row on copies of each example, each row drawing its own reference and
    # point on the line; their spread / sqrt(samples) is the standard error of the estimate
    terms = GradientShap(net).attribute(x.repeat_interleave(1000, 0), baselines=references, target=target,
                                        n_samples=1, stdevs=0.0).view(2, 1000, 6).double()
    standard_error = terms.std(1) / samples ** 0.5
    # 4 standard errors of GradientShap's estimate; the float32 rounding of both sides is far below them
    difference = (ours.double() - estimate).abs()
    assert torch.all(difference <= 4 * standard_error + 64 * EPS * estimate.abs())
    print(f"GradientShap: max |difference| {difference.max():.2e}, max relative to 1 standard error "
          f"{(difference / standard_error).max():.2f}")


def test_drawn_references_are_reproducible_and_average_to_every_reference_once():
    net, target, samples = tanh_net(seed=6), 3, 1000
    torch.manual_seed(7)
    x, references = torch.randn(2, 6), torch.randn(5, 6)
    engine = AttributionEngine(device="cpu", max_batch=20_000)

    def run(**options):
        return engine.attribute(net, x, target, baseline=references, steps=16, rule="gauss-legendre",
                                method="expected_gradients", method_options=options)

    every = run()
    drawn, again, other = run(samples=samples, seed=1), run(samples=samples, seed=1), run(samples=samples, seed=2)
    torch.testing.assert_close(drawn.attributions, again.attributions, rtol=0, atol=0)
    assert not torch.equal(drawn.attributions, other.attributions)
    assert drawn.extras["references"] == samples
    # drawn uniformly, the mean of `samples` per-reference IGs differs from every reference's mean by a Monte Carlo
    # error whose standard error is their spread / sqrt(samples); 4 of them
    per_reference = torch.stack([engine.attribute(net, x, target, baseline=references[r:r + 1], steps=16,
                                                  rule="gauss-legendre").attributions for r in range(5)])
    standard_error = per_reference.std(0) / samples ** 0.5
    assert torch.all((drawn.attributions - every.attributions).abs() <= 4 * standard_error)
    single = engine.attribute(net, x, target, baseline=references[:1], steps=16, rule="gauss-legendre",
                              method="expected_gradients", method_options={"samples": 3})
    plain = engine.attribute(net, x, target, baseline=references[:1], steps=16, rule="gauss-legendre")
    # one reference drawn three times: the mean of three equal scans, in batches of 6 rows, not 2. Per feature
    # |x - r| sum_k w_k g_k, g a 16-term sum bounded by G: K nodes (K + 1 eps), 16 terms (16 eps), tanh' rounding
    # (6 eps) and shift (0.77-Lipschitz in z, whose 7-term sums of size S round by 7 eps: 6 S eps), all of |x - r| G
    size = float((torch.maximum(x.abs(), references[:1].abs()) @ net[0].weight.abs().T + net[0].bias.abs()).max())
    bound = (len(plain.alphas) + 23 + 6 * size) * EPS * (x - references[:1]).abs() * gradient_bound(net)[target]
    assert torch.all((single.attributions - plain.attributions).abs() <= bound)


def test_linear_model_gets_weight_times_distance_to_the_mean_reference():
    torch.manual_seed(8)
    weights, x, references = torch.randn(6, 3), torch.randn(4, 6), torch.randn(7, 6)
    steps, targets = 8, [0, 2]
    result = AttributionEngine(device="cpu").attribute(lambda z: z @ weights, x, targets, baseline=references,
                                                       steps=steps, rule="gauss-legendre", method="expected_gradients")
    x64, r64, w64 = x.double(), references.double(), weights.double()
    for j, t in enumerate(targets):
        expected = w64[:, t] * (x64 - r64.mean(0))
        # (x - r) * w * (sum of `steps` float32 weights): steps + 2 roundings of |x - r| |w|, averaged over r
        spread = (x64.unsqueeze(0) - r64.unsqueeze(1)).abs().mean(0)
        tolerance = (steps + 2) * EPS * spread * w64[:, t].abs()
        assert torch.all((result.attributions[j].double() - expected).abs() <= tolerance)
        np.testing.assert_allclose(result.score_baseline[:, j], (r64 @ w64[:, t]).mean().item(),
                                   atol=6 * EPS * float((r64.abs() @ w64[:, t].abs()).max()))  # 6 float32 sums
    # sum of attributions - (F(x) - mean F(r)): the attributions' (steps + 2) eps of (|x| + |r|) @ |w|, and
    # 6 eps for each of F(x) and F(r), float32 sums of 6 terms
    size = (x64.abs() @ w64.abs() + (r64.abs() @ w64.abs()).max(0).values).numpy()[:, targets]
    assert np.all(np.abs(result.delta) <= (steps + 14) * EPS * size)


@pytest.mark.parametrize("seed", [0, 1])
def test_adaptive_rule_holds_completeness_per_reference(seed):
    net, targets, tolerance = tanh_net(seed=seed), [0, 1, 3], 1e-3
    torch.manual_seed(10 + seed)
    x, references = 2 * torch.randn(3, 6), 2 * torch.randn(4, 6)
    result = AttributionEngine(device="cpu", max_batch=4096).attribute(
        net, x, targets, baseline=references, steps=4, rule="adaptive", tolerance=tolerance, max_steps=512,
        output="softmax", method="expected_gradients")
    assert result.steps_used < 512  # each path stopped because it reached the tolerance, not the budget
    with torch.no_grad():
        f_x = torch.softmax(net(x), -1)[:, targets].double()  # [N, T]
        f_r = torch.softmax(net(references), -1)[:, targets].double()  # [R, T]
    # softmax of logits from 2 layers of float32 sums (3 eps of `size` each, doubled by the softmax) in another batch,
    # at the path's ends r + 1 * (x - r), rounded by 2 eps of |x| + |r|: 16 eps of size
    size = float(forward_size(net, x.abs().unsqueeze(0) + references.abs().unsqueeze(1)).max())
    np.testing.assert_allclose(result.score_baseline, f_r.mean(0).expand_as(f_x).numpy(), rtol=0, atol=16 * EPS * size)
    # each reference's scan reaches |delta_r| <= tolerance * |F(x) - F(r)| (or its floor, 16 eps of the largest
    # score); the mean of the deltas is bounded by the mean of those bounds
    bound = tolerance * (f_x.unsqueeze(0) - f_r.unsqueeze(1)).abs().clamp_min(16 * EPS).mean(0).numpy()
    assert np.all(np.abs(result.delta) <= bound)
    # the trend: the mean over the references of each scan's F, from mean F(r) to F(input)
    np.testing.assert_allclose(result.scores[0], result.score_baseline, rtol=0, atol=0)
    np.testing.assert_allclose(result.scores[-1], f_x.numpy(), rtol=0, atol=16 * EPS * size)


def test_missing_and_misshapen_references_are_refused():
    net, engine = tanh_net(), AttributionEngine(device="cpu")
    x = torch.randn(2, 6)
    for missing in (None, 0.0):
        with pytest.raises(ValueError, match="reference set"):
            engine.attribute(net, x, 0, baseline=missing, method="expected_gradients")
    with pytest.raises(ValueError, match="shaped like the inputs"):
        engine.attribute(net, x, 0, baseline=torch.randn(3, 5), method="expected_gradients")
    with pytest.raises(ValueError, match="at least one"):
        engine.attribute(net, x, 0, baseline=torch.randn(0, 6), method="expected_gradients")
    two = TwoInputs(net)
    with pytest.raises(ValueError, match="share the batch dimension"):  # as many references for every input
        engine.attribute(two, (x[:, :2], x[:, 2:]), 0, baseline=(torch.randn(3, 2), torch.randn(4, 4)),
                         method="expected_gradients")
    with pytest.raises(ValueError, match="samples >= 0"):
        engine.attribute(net, x, 0, baseline=torch.randn(3, 6), method="expected_gradients",
                         method_options={"samples": -1})


def test_the_points_evaluated_count_every_references_path_and_the_steps_stay_per_path():
    net, x, references = tanh_net(seed=0), torch.randn(1, 6), torch.randn(5, 6)
    engine = AttributionEngine(device="cpu")
    one_path = engine.attribute(net, x, 0, baseline=references[:1], steps=8, rule="trapezoid",
                                method="expected_gradients")
    five_paths = engine.attribute(net, x, 0, baseline=references, steps=8, rule="trapezoid",
                                  method="expected_gradients")
    assert five_paths.points_evaluated == 5 * one_path.points_evaluated
    assert five_paths.steps_used == one_path.steps_used == 8
