"""IDGI against a closed form, its exact completeness, a plain loop of the paper's Algorithm 1 and its own chunking."""
import numpy as np
import pytest
import torch

from ig_core import AttributionEngine

EPS = torch.finfo(torch.float32).eps  # tolerances are multiples of the rounding of the terms involved
EPS64 = torch.finfo(torch.float64).eps
pytestmark = pytest.mark.numeric


def relu_net(inputs=6, hidden=16, classes=4, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))


def forward_size(net, points):
    """Per example, the sum of |terms| of the net's float sums at `points`: |W|, |b| layer by layer on |x|."""
    size = points.abs()
    for layer in net[::2]:
        size = size @ layer.weight.abs().T + layer.bias.abs()
    return size.max(-1).values


def idgi_loop(net, x, baseline, target, steps):
    """The paper's Algorithm 1 for one example and target, one point at a time."""
    def f(point):
        return torch.softmax(net(point.unsqueeze(0)), -1)[0, target]

    attribution = torch.zeros_like(x)
    for i in range(steps):
        point = (baseline + i / steps * (x - baseline)).requires_grad_(True)
        score = f(point)
        gradient, = torch.autograd.grad(score, point)
        with torch.no_grad():
            change = f(baseline + (i + 1) / steps * (x - baseline)) - score
        attribution += gradient * gradient / (gradient * gradient).sum() * change
    return attribution


def test_linear_model_shares_the_score_change_by_squared_weights():
    torch.manual_seed(1)
    weights, x, baseline = torch.randn(6, 3), torch.randn(4, 6), torch.randn(4, 6)
    steps, targets = 5, [0, 2]
    result = AttributionEngine(device="cpu").attribute(lambda z: z @ weights, x, targets, baseline=baseline,
                                                       method="idgi", method_options={"steps": steps})
    w64, change = weights.double(), ((x - baseline).double() @ weights.double())
    # F at the two ends are float32 sums of 6 terms at points that are themselves rounded (b + 1 * (x - b)):
    # (6 + 2) eps of (|x| + |b| + |x - b|) @ |w| each; one more eps for the attribution's rounding
    size = (x.abs() + baseline.abs() + (x - baseline).abs()).double() @ w64.abs()
    for j, t in enumerate(targets):
        share = w64[:, t] ** 2 / (w64[:, t] ** 2).sum()
        expected = share * change[:, t:t + 1]
        tolerance = share * (17 * EPS * size[:, t:t + 1] + EPS * change[:, t:t + 1].abs())
        assert torch.all((result.attributions[j].double() - expected).abs() <= tolerance)
        torch.testing.assert_close(result.gradient_at_input[j], weights[:, t].expand(4, 6), rtol=0, atol=0)
    np.testing.assert_array_equal(result.alphas, np.linspace(0, 1, steps + 1))
    assert result.points_evaluated == steps + 1 and result.completeness == "F(input) - F(baseline)"


@pytest.mark.parametrize("moving_only", [False, True])
def test_features_the_path_does_not_move_share_only_by_the_papers_rule(moving_only):
    torch.manual_seed(3)
    weights, x, baseline = torch.randn(6, 2), torch.randn(3, 6), torch.randn(3, 6)
    x[0, 1], x[2, [0, 4]] = baseline[0, 1], baseline[2, [0, 4]]
    result = AttributionEngine(device="cpu").attribute(lambda z: z @ weights, x, [1], baseline=baseline,
                                                       method="idgi",
                                                       method_options={"steps": 4, "moving_only": moving_only})
    sharing = (x != baseline).double() if moving_only else torch.ones(3, 6, dtype=torch.float64)
    w64, change = weights[:, 1].double(), (x - baseline).double() @ weights[:, 1].double()
    if moving_only:
        assert (result.attributions[0][x == baseline] == 0).all()  # 0 * share, exactly
    # the sharing features split the change by their squared weights; bound as in the linear test above
    share = sharing * w64 ** 2 / (sharing * w64 ** 2).sum(1, keepdim=True)
    size = (x.abs() + baseline.abs() + (x - baseline).abs()).double() @ w64.abs()
    tolerance = share * (17 * EPS * size[:, None] + EPS * change.abs()[:, None])
    assert torch.all((result.attributions[0].double() - share * change[:, None]).abs() <= tolerance)


@pytest.mark.parametrize("steps", [1, 4, 64])
def test_completeness_holds_to_rounding_for_any_number_of_steps(steps):
    net, targets = relu_net(seed=2), [0, 2, 3]
    torch.manual_seed(3)
    x, baseline = 2 * torch.randn(3, 6), torch.randn(3, 6)
    result = AttributionEngine(device="cpu", max_batch=8).attribute(
        net, x, targets, baseline=baseline, output="softmax", method="idgi", method_options={"steps": steps})
    changes = np.abs(np.diff(result.scores, axis=0)).sum(0)  # sum over steps of |d_i|, [N, T]
    # the shares of a step add up to 1 in float64; each attribution is then rounded to float32 once (eps / 2 of it)
    # and the |attributions| add up to at most sum |d_i|: |delta| <= eps / 2 * sum |d_i|, with a factor 2 to spare
    assert np.all(np.abs(result.delta) <= EPS * changes)
    assert not np.any(result.nothing_to_attribute)  # there is a score change to share out
    with torch.no_grad():
        f_x = torch.softmax(net(x), -1)[:, targets].double().numpy()
    # the trend is F at the nodes, ending at the input: F(x) computed elsewhere, 3 layers of float32 sums of size
    np.testing.assert_allclose(result.scores[-1], f_x, rtol=0,
                               atol=12 * EPS * float(forward_size(net, x).max()))
    assert result.scores.shape == (steps + 1, 3, len(targets))


@pytest.mark.parametrize("two_inputs", [False, True])
def test_equals_a_plain_loop_of_algorithm_1(two_inputs):
    # in float64 (the engine scans float64 inputs in float64): the comparison sees the algorithm, not float32 rounding
    net, steps, targets = relu_net(seed=4).double(), 16, [1, 3]
    torch.manual_seed(5)
    x, baseline = 2 * torch.randn(2, 6, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)
    engine = AttributionEngine(device="cpu", max_batch=8)
    options = dict(output="softmax", method="idgi", method_options={"steps": steps})
    if two_inputs:  # the squared gradient is normalised over the features of all inputs together
        result = engine.attribute(lambda u, v: net(torch.cat([u, v], 1)), (x[:, :2], x[:, 2:]), targets,
                                  baseline=(baseline[:, :2], baseline[:, 2:]), **options)
        ours = torch.cat(result.attributions, -1)
    else:
        ours = engine.attribute(net, x, targets, baseline=baseline, **options).attributions
    # F and the gradients are float64 sums over the net (`size`) in either order of batching: each step's
    # share of d_i is off by a few eps64 of `size`, over `steps` steps; 64 of them for the share's normalisation
    size = forward_size(net, torch.cat([x, baseline]).abs().max(0).values.unsqueeze(0))
    for j, target in enumerate(targets):
        for n in range(2):
            expected = idgi_loop(net, x[n], baseline[n], target, steps)
            assert torch.all((ours[j, n] - expected).abs() <= 64 * steps * EPS64 * size)


def test_chunks_carry_the_last_gradient_into_the_next():
    # float64, so that the differences left are the rounding of other batch splits, eps64 of the net's sums
    net, targets, steps = relu_net(seed=6).double(), [0, 1], 10
    torch.manual_seed(7)
    x, baseline = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)

    def run(max_batch):
        return AttributionEngine(device="cpu", max_batch=max_batch).attribute(
            net, x, targets, baseline=baseline, output="softmax", method="idgi", method_options={"steps": steps})

    whole = run(10_000)
    size = forward_size(net, torch.cat([x, baseline]).abs().max(0).values.unsqueeze(0))
    for max_batch in (3, 7, 12):  # 1, 2 and 4 nodes per chunk for 3 examples; 11 nodes do not divide evenly
        chunked = run(max_batch)
        torch.testing.assert_close(chunked.attributions, whole.attributions, rtol=0,
                                   atol=64 * steps * EPS64 * float(size))
        np.testing.assert_allclose(chunked.scores, whole.scores, rtol=0, atol=12 * EPS64 * float(size))


def test_steps_below_one_are_refused():
    with pytest.raises(ValueError, match="steps >= 1"):
        AttributionEngine(device="cpu").attribute(relu_net(), torch.randn(1, 6), 0, method="idgi",
                                                  method_options={"steps": 0})
