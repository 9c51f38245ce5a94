"""Guided IG against PAIR's saliency.core.GuidedIG, closed forms and its own one-at-a-time runs."""
import numpy as np
import pytest
import saliency.core as pair
import torch

from ig_core import AttributionEngine

EPS = float(torch.finfo(torch.float32).eps)
pytestmark = [pytest.mark.numeric, pytest.mark.usefixtures("one_thread")]  # tiny nets: threads only contend

HIDDEN = 16


@pytest.fixture
def engine():
    return AttributionEngine(device="cpu", cache_size=0)


@pytest.fixture
def pair_guided_ig(monkeypatch):
    """PAIR's GuidedIG calls np.quantile(..., interpolation=), which numpy renamed `method` and then removed."""
    quantile = np.quantile
    monkeypatch.setattr(np, "quantile",
                        lambda a, q, interpolation="linear", **kw: quantile(a, q, method=interpolation, **kw))
    return pair.GuidedIG()


def tanh_net(inputs=12, classes=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, classes))


def gradient_bound(net) -> torch.Tensor:
    """|dF_t/dx_i| <= (|W2| @ |W1|)[t, i], since |tanh'| <= 1: also the sum of |terms| of each computed gradient."""
    return net[2].weight.abs() @ net[0].weight.abs()


def attribution_tolerance(net, x, b, target):
    """Per feature: the path moves each feature monotonically, so its attribution sums |steps| * |gradient| <=
    |x - b| * bound; gradients of the same points rounded in other batches differ by the rounding of their
    HIDDEN-term sums (and tanh'), and the float64 result is rounded to float32 once."""
    return (HIDDEN + 2) * EPS * (x - b).abs() * gradient_bound(net)[target]


def score_tolerance(net, target):
    """F's rounding in another batch: its last layer sums HIDDEN terms |W2| * |tanh| <= |W2|, and the bias."""
    return HIDDEN * EPS * float(net[2].weight[target].abs().sum() + net[2].bias[target].abs())


def pair_gradients(net, target):
    """PAIR's call_model_function: the float32 net's gradient at the float32 point PAIR's float64 path reaches."""
    def call(batch, call_model_args=None, expected_keys=None):
        z = torch.tensor(np.asarray(batch), dtype=torch.float32, requires_grad=True)
        gradient, = torch.autograd.grad(net(z)[:, target].sum(), z)
        return {pair.INPUT_OUTPUT_GRADIENTS: gradient.numpy()}
    return call


@pytest.mark.parametrize("steps,fraction,max_dist", [(200, 0.25, 0.02), (37, 0.1, 0.1), (50, 0.5, 1.0)])
def test_agrees_with_pair(engine, pair_guided_ig, steps, fraction, max_dist):
    net = tanh_net()
    torch.manual_seed(1)
    x, b = torch.randn(1, 12), 0.3 * torch.randn(1, 12)
    options = dict(steps=steps, fraction=fraction, max_dist=max_dist)
    ours = engine.attribute(net, x, 2, b, method="guided_ig", method_options=options).attributions
    reference = pair_guided_ig.GetMask(x[0].double().numpy(), pair_gradients(net, 2), x_baseline=b[0].double().numpy(),
                                       x_steps=steps, fraction=fraction, max_dist=max_dist)
    reference = torch.as_tensor(reference)
    assert torch.all((ours.double() - reference).abs() <= attribution_tolerance(net, x, b, 2).double())


def test_linear_model_is_exact_and_an_input_at_its_baseline_gets_nothing(engine):
    torch.manual_seed(2)
    w = torch.randn(5, 3)
    x, b = torch.randn(3, 5), torch.randn(3, 5)
    b[2] = x[2]
    result = engine.attribute(lambda z: z @ w, x, [0, 2], b, method="guided_ig", method_options={"steps": 20})
    for j, t in enumerate([0, 2]):
        # the gradient is w everywhere and the path ends at the input: w * (x - b), rounded to float32
        torch.testing.assert_close(result.attributions[j], w[:, t] * (x - b), atol=0, rtol=2 * EPS)
    assert torch.all(result.attributions[:, 2] == 0)
    # F: float32 dot products of 5 terms, so |delta| is a few eps of (|x| + |b|) @ |w|
    assert np.all(np.abs(result.delta) <= 8 * EPS * ((x.abs() + b.abs()) @ w.abs())[:, [0, 2]].numpy())


def test_separable_convex_model_misses_by_the_left_riemann_error_which_falls_with_steps(engine):
    """F = sum_i a_i z_i^2 / 2 with a_i > 0. The path moves each feature monotonically; on a step that moves it by
    D, a left Riemann term of a_i z_i misses a_i ((z + D)^2 - z^2) / 2 by -a_i D^2 / 2. A step moves the features
    by 1/steps of the L1 distance L in all, so -max(a) L^2 / (2 steps) <= delta <= 0."""
    torch.manual_seed(3)
    a = torch.rand(8) + 0.5
    x, b = torch.randn(2, 8), torch.randn(2, 8)
    f = lambda z: (a * z * z).sum(1, keepdim=True) / 2
    l1 = (x - b).abs().sum(1).double().numpy()[:, None]
    rounding = 8 * EPS * (a * (x * x + b * b)).sum(1).double().numpy()[:, None]  # F at both ends, 8-term sums
    errors = []
    for steps in (20, 200):
        delta = engine.attribute(f, x, 0, b, method="guided_ig", method_options={"steps": steps}).delta
        assert np.all(delta <= rounding) and np.all(delta >= -float(a.max()) * l1 ** 2 / (2 * steps) - rounding)
        errors.append(np.abs(delta))
    assert np.all(errors[1] < errors[0] / 5)  # first order: 10 times the steps, about a tenth of the error


def test_no_room_to_stray_is_integrated_gradients_with_the_left_rule(engine):
    net = tanh_net()
    torch.manual_seed(4)
    x, b = torch.randn(2, 12), torch.randn(2, 12)
    guided = engine.attribute(net, x, [0, 1], b, method="guided_ig", method_options={"steps": 30, "max_dist": 0.0})
    straight = engine.attribute(net, x, [0, 1], b, steps=30, rule="left")
    for j in range(2):
        # the same points up to the float32 rounding of b + alpha (x - b), whose gradients differ by a few eps
        assert torch.all((guided.attributions[j] - straight.attributions[j]).abs()
                         <= 2 * attribution_tolerance(net, x, b, j))


def test_batched_examples_and_targets_equal_one_at_a_time(engine):
    net = tanh_net()
    torch.manual_seed(5)
    x, b = torch.randn(3, 12), torch.randn(3, 12)
    options = {"steps": 40}
    batched = engine.attribute(net, x, [2, 0], b, method="guided_ig", method_options=options)
    assert batched.attributions.shape == (2, 3, 12) and batched.scores.shape == (41, 3, 2)
    for n in range(3):
        for j, t in enumerate([2, 0]):
            alone = engine.attribute(net, x[n:n + 1], t, b[n:n + 1], method="guided_ig", method_options=options)
            tolerance = attribution_tolerance(net, x[n:n + 1], b[n:n + 1], t)
            assert torch.all((batched.attributions[j, n:n + 1] - alone.attributions).abs() <= tolerance)
            for end in ("score_input", "score_baseline"):
                assert abs(getattr(batched, end)[n, j] - getattr(alone, end)[0, 0]) <= score_tolerance(net, t)


def test_tuple_inputs_share_one_path(engine):
    """The features of all inputs are ranked together: two inputs side by side equal one input."""
    net = tanh_net()
    torch.manual_seed(6)
    x, b = torch.randn(2, 12), torch.randn(2, 12)
    options = {"steps": 25}
    whole = engine.attribute(net, x, 1, b, method="guided_ig", method_options=options)
    parts = engine.attribute(lambda u, v: net(torch.cat([u, v], 1)), (x[:, :5], x[:, 5:]), 1,
                             (b[:, :5], b[:, 5:]), method="guided_ig", method_options=options)
    torch.testing.assert_close(torch.cat(parts.attributions, 1), whole.attributions, atol=0, rtol=0)
    np.testing.assert_array_equal(parts.delta, whole.delta)


def test_trend_runs_from_baseline_to_input(engine):
    net = tanh_net()
    torch.manual_seed(7)
    x, b = torch.randn(1, 12), torch.randn(1, 12)
    result = engine.attribute(net, x, 0, b, method="guided_ig", method_options={"steps": 10})
    np.testing.assert_array_equal(result.alphas, np.arange(11) / 10)
    with torch.no_grad():
        ends = net(torch.cat([b, x]))[:, 0].double().numpy()
    np.testing.assert_allclose([result.scores[0, 0, 0], result.scores[-1, 0, 0]], ends, rtol=0,
                               atol=score_tolerance(net, 0))
    assert result.points_evaluated == 11


def test_bad_options_are_refused(engine):
    with pytest.raises(ValueError, match="fraction and max_dist"):
        engine.attribute(tanh_net(), torch.randn(1, 12), 0, method="guided_ig", method_options={"fraction": 2.0})
    with pytest.raises(ValueError, match="no option"):
        engine.attribute(tanh_net(), torch.randn(1, 12), 0, method="guided_ig", method_options={"x_steps": 5})
