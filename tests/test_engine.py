"""ig_core against exact answers: closed forms, completeness, invariances and engine behaviour."""
import threading

import numpy as np
import pytest
import torch

from ig_core import FIXED_RULES, AttributionEngine, fixed_rule, path_points

EPS = torch.finfo(torch.float32).eps  # tolerances are multiples of the rounding of the terms involved
pytestmark = pytest.mark.numeric

torch.manual_seed(0)


@pytest.fixture
def engine():
    return AttributionEngine(device="cpu", max_batch=64)


def relu_net(inputs=6, hidden=16, classes=4, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))


# --- quadrature -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", FIXED_RULES)
@pytest.mark.parametrize("steps", [2, 7, 50])
def test_weights_sum_to_one_and_nodes_are_standard(rule, steps):
    nodes, weights = fixed_rule(rule, steps)
    assert len(nodes) == steps
    assert weights.sum() == pytest.approx(1.0, abs=steps * np.finfo(np.float64).eps)  # n float64 roundings of 1
    k = np.arange(steps)
    expected = {"left": k / steps, "right": (k + 1) / steps, "midpoint": (k + 0.5) / steps,
                "trapezoid": k / (steps - 1)}
    if rule in expected:
        np.testing.assert_allclose(nodes, expected[rule])


def test_bad_rule_and_steps_are_refused(engine):
    with pytest.raises(ValueError, match="unknown rule"):
        fixed_rule("simpson", 10)
    with pytest.raises(ValueError, match="at least 2"):
        fixed_rule("trapezoid", 1)
    with pytest.raises(ValueError, match="out of range"):
        engine.attribute(relu_net(), torch.randn(1, 6), 9)


# --- exact answers -------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", FIXED_RULES + ("adaptive",))
def test_linear_function_gets_exact_attributions(engine, rule):
    w = torch.randn(5, 3, dtype=torch.float64).float()
    x, b = torch.randn(2, 5), torch.randn(2, 5)
    result = engine.attribute(lambda z: z @ w, x, [0, 2], baseline=b, steps=7, rule=rule)
    for j, t in enumerate([0, 2]):
        torch.testing.assert_close(result.attributions[j], w[:, t] * (x - b), atol=1e-6, rtol=1e-6)
    # F: float32 dot products of 5 terms; attributions: d_i times float32 sums of 7 weighted gradients, so
    # |delta| is a few eps of the magnitudes involved, (|x| + |b|) @ |w| (<= 6.5 eps of it, worst case)
    assert np.all(np.abs(result.delta) <= 8 * EPS * ((x.abs() + b.abs()) @ w.abs())[:, [0, 2]].numpy())


def quadratic(a_matrix):
    return lambda z: torch.einsum("ni,ij,nj->n", z, a_matrix, z).unsqueeze(1)


def test_quadratic_closed_form_for_every_rule(engine):
    """Along the path the gradient is linear in alpha: midpoint, trapezoid and Gauss-Legendre are exact,
    left and right miss by exactly -/+ (g(1) - g(0)) / (2n)."""
    a_matrix = torch.randn(4, 4)
    sym = a_matrix + a_matrix.T
    x, b = torch.randn(1, 4), torch.randn(1, 4)
    d = x - b
    exact = d * ((b + d / 2) @ sym)
    end_gap = d * (d @ sym)  # (g(1) - g(0)) per feature
    n = 10
    for rule, offset in [("midpoint", 0), ("trapezoid", 0), ("gauss-legendre", 0), ("left", -1), ("right", 1)]:
        result = engine.attribute(quadratic(a_matrix), x, 0, baseline=b, steps=n, rule=rule)
        torch.testing.assert_close(result.attributions, exact + offset * end_gap / (2 * n), atol=1e-5, rtol=1e-5)


def sigmoid_sum(scale):
    return lambda z: torch.sigmoid(z * scale).sum(1, keepdim=True)


@pytest.mark.parametrize("rule,order", [("left", 1), ("right", 1), ("midpoint", 2), ("trapezoid", 2)])
def test_error_shrinks_at_the_rule_order(rule, order):
    """F = sum_i sigmoid(a_i x_i) is separable: IG_i = sigmoid(a_i x_i) - sigmoid(a_i b_i) exactly."""
    engine = AttributionEngine(device="cpu", max_batch=256)
    scale = torch.tensor([[1.5, -2.0, 3.0, 0.7]], dtype=torch.float64).float()
    x = torch.tensor([[1.0, 0.8, -0.6, 2.0]])
    exact = (torch.sigmoid(scale * x) - 0.5).double()
    errors = []
    for n in (16, 32, 64):
        result = engine.attribute(sigmoid_sum(scale), x, 0, steps=n, rule=rule)
        errors.append(float((result.attributions.double() - exact).abs().max()))
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(observed - order) < 0.25), (rule, errors, observed)


def test_gauss_legendre_converges_spectrally():
    engine = AttributionEngine(device="cpu")
    scale = torch.tensor([[1.5, -2.0, 3.0, 0.7]])
    x = torch.tensor([[1.0, 0.8, -0.6, 2.0]])
    exact = torch.sigmoid(scale * x) - 0.5
    result = engine.attribute(sigmoid_sum(scale), x, 0, steps=12, rule="gauss-legendre")
    assert float((result.attributions - exact).abs().max()) < 1e-6


# --- completeness on networks --------------------------------------------------------------------

@pytest.mark.parametrize("rule,steps", [("left", 4096), ("right", 4096), ("midpoint", 512),
                                        ("trapezoid", 512), ("gauss-legendre", 2048)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_completeness_on_random_relu_softmax_networks(rule, steps, seed):
    engine = AttributionEngine(device="cpu", max_batch=4096)
    net = relu_net(seed=seed)
    x = torch.randn(1, 6) * 2
    result = engine.attribute(net, x, 1, steps=steps, rule=rule, output="softmax")
    assert result.max_relative_delta < 1e-3, result.summary()


ADAPTIVE_REPORT = []


@pytest.mark.parametrize("seed", range(6))
def test_adaptive_reaches_tolerance_and_reports_steps(seed):
    engine = AttributionEngine(device="cpu", max_batch=64)
    net = relu_net(inputs=10, hidden=32, classes=5, seed=seed)
    x = torch.randn(1, 10) * 3
    result = engine.attribute(net, x, 0, steps=8, rule="adaptive", tolerance=0.01, max_steps=512, output="softmax")
    ADAPTIVE_REPORT.append((seed, result.steps_used, result.max_relative_delta))
    print(f"adaptive seed {seed}: {result.steps_used} steps, relative delta {result.max_relative_delta:.2e}")
    assert result.max_relative_delta <= 0.01
    assert result.steps_used == len(result.alphas) <= 512
    assert result.weights.sum() == pytest.approx(1.0)
    # it reuses every point: the alphas are unique and the grid is nested from the start
    assert set(np.linspace(0, 1, 8)) <= set(result.alphas)


def test_adaptive_needs_fewer_points_than_uniform_on_a_saturating_path():
    """F = sum_i 1 - exp(-30 x_i) saturates early: refinement goes where the error is."""
    engine = AttributionEngine(device="cpu", max_batch=512)
    f = lambda z: (1 - torch.exp(-30 * z)).sum(1, keepdim=True)
    x = torch.tensor([[1.0, 0.5]])
    adaptive = engine.attribute(f, x, 0, steps=8, rule="adaptive", tolerance=1e-3, max_steps=1024)
    assert adaptive.max_relative_delta <= 1e-3
    uniform = engine.attribute(f, x, 0, steps=2 * adaptive.steps_used, rule="trapezoid")
    assert uniform.max_relative_delta > 1e-3  # twice the points, uniformly spread, are not enough
    assert np.mean(adaptive.alphas < 0.2) > 0.5  # most points sit where the function bends


@pytest.mark.parametrize("steps, first_points", [(4, 4), (16, 6)])
def test_partial_results_arrive_after_each_round_and_the_last_equals_the_plain_result(steps, first_points):
    """The adaptive rule hands out its trapezoid sum after every round that missed the tolerance, the first from a
    coarse part of a starting grid of more than 10 points (every third of 16: 6 points): each partial is the
    trapezoid integral on the grid so far (checked against a fixed trapezoid on that grid), and asking for partials
    changes nothing in the final result."""
    engine = AttributionEngine(device="cpu", max_batch=64, cache_size=0)
    f = lambda z: (1 - torch.exp(-30 * z)).sum(1, keepdim=True)
    x = torch.tensor([[1.0, 0.5]])
    partials = []
    result = engine.attribute(f, x, 0, steps=steps, rule="adaptive", tolerance=1e-3, max_steps=1024,
                              partial_results=partials.append)
    plain = engine.attribute(f, x, 0, steps=steps, rule="adaptive", tolerance=1e-3, max_steps=1024)
    assert not result.stopped_early
    # the coarse points came in batches of other shapes: each node's gradient 30 exp(-30 a x) may round by 2 eps of
    # itself, the K-node sum by K eps, the product with x by 1 eps; all terms > 0 (x > 0): (K + 3) eps of |attribution|
    bound = (len(plain.alphas) + 3) * np.finfo(np.float32).eps * plain.attributions.abs()
    assert torch.all((result.attributions - plain.attributions).abs() <= bound)
    assert np.array_equal(result.alphas, plain.alphas)
    assert len(partials) >= 3 and partials[0].points_evaluated == first_points
    assert [p.points_evaluated for p in partials] == sorted({p.points_evaluated for p in partials})
    assert all(p.max_relative_delta > 1e-3 for p in partials) and result.max_relative_delta <= 1e-3
    assert partials[-1].points_evaluated < result.points_evaluated
    for partial in partials:  # d/dx of 1 - exp(-30 x) is 30 exp(-30 x): the trapezoid sum on the partial's grid
        a, w = partial.alphas, partial.weights[:, 0]
        expected = x[0].double() * torch.tensor([(w * 30 * np.exp(-30 * a * float(v))).sum() for v in x[0]])
        # float32 gradients at each node, summed in float32: a few roundings of the sum of |terms|
        bound = 8 * np.finfo(np.float32).eps * expected.abs()
        assert torch.all((partial.attributions[0].double() - expected).abs() <= bound)


def test_returning_false_stops_the_adaptive_rule_with_the_result_so_far_which_is_not_cached():
    engine = AttributionEngine(device="cpu", max_batch=64)
    f = lambda z: (1 - torch.exp(-30 * z)).sum(1, keepdim=True)
    x = torch.tensor([[1.0, 0.5]])
    seen = []
    stopped = engine.attribute(f, x, 0, steps=4, rule="adaptive", tolerance=1e-3, model_key="saturating",
                               partial_results=lambda partial: seen.append(partial) or len(seen) < 2)
    assert stopped.stopped_early and len(seen) == 2
    assert stopped.points_evaluated == seen[-1].points_evaluated and stopped.max_relative_delta > 1e-3
    assert torch.equal(stopped.attributions, seen[-1].attributions)
    again = engine.attribute(f, x, 0, steps=4, rule="adaptive", tolerance=1e-3, model_key="saturating")
    assert not again.stopped_early and again.max_relative_delta <= 1e-3  # computed afresh, not the stopped one


def test_the_adaptive_rule_holds_no_more_gradients_in_memory_as_its_points_grow():
    """Its gradients wait in a GradientStore (a temporary file), not in memory: the tensors of the input's size
    alive at each round stay as many however many points the rule has taken."""
    import gc

    features = 777  # a size no other tensor of the test has
    engine = AttributionEngine(device="cpu", max_batch=4, cache_size=0)
    f = lambda z: (1 - torch.exp(-30 * z)).sum(1, keepdim=True)
    x = torch.rand(1, features) + 0.5
    alive, points = [], []

    def count(partial) -> None:
        gc.collect()
        alive.append(sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor) and o.shape[-1:] == (features,)))
        points.append(partial.points_evaluated)

    engine.attribute(f, x, 0, steps=4, rule="adaptive", tolerance=1e-6, max_steps=256, partial_results=count)
    assert points[-1] >= 100 and len(set(alive)) == 1, (points, alive)


def test_partial_results_are_never_called_for_fixed_rules_or_a_grid_that_already_meets_the_tolerance():
    engine = AttributionEngine(device="cpu", max_batch=64, cache_size=0)
    calls = []
    linear = lambda z: (z * torch.tensor([2.0, -1.0])).sum(1, keepdim=True)
    x = torch.tensor([[1.0, 3.0]])
    engine.attribute(linear, x, 0, steps=4, rule="adaptive", partial_results=calls.append)
    engine.attribute(relu_net(), torch.randn(1, 6), 0, steps=8, rule="trapezoid", partial_results=calls.append)
    assert calls == []


# --- invariances ---------------------------------------------------------------------------------

def test_figure14_functionally_equivalent_networks_get_identical_attributions(engine):
    """relu(s) and (s + relu(s) + relu(-s)) / 2 with s = x1 + x2 - 1 are the same function."""
    net_a = lambda z: torch.relu(z.sum(1, keepdim=True) - 1)

    def net_b(z):
        s = z.sum(1, keepdim=True) - 1
        return (s + torch.relu(s) + torch.relu(-s)) / 2

    x = torch.ones(1, 2)
    a = engine.attribute(net_a, x, 0, steps=64, rule="midpoint")
    b = engine.attribute(net_b, x, 0, steps=64, rule="midpoint")
    torch.testing.assert_close(a.attributions, b.attributions)
    torch.testing.assert_close(a.attributions, torch.tensor([[0.5, 0.5]]))


def test_split_and_permuted_hidden_units_give_identical_attributions(engine):
    net = relu_net(inputs=5, hidden=8, classes=3)
    first, second = net[0], net[2]
    # same function: each hidden unit of layer 1 duplicated with its outgoing weight split 30/70, permuted
    perm = torch.randperm(16)
    wide_in = torch.nn.Linear(5, 16)
    wide_mid = torch.nn.Linear(16, 8)
    with torch.no_grad():
        wide_in.weight.copy_(torch.cat([first.weight, first.weight])[perm])
        wide_in.bias.copy_(torch.cat([first.bias, first.bias])[perm])
        wide_mid.weight.copy_(torch.cat([0.3 * second.weight, 0.7 * second.weight], 1)[:, perm])
        wide_mid.bias.copy_(second.bias)
    twin = torch.nn.Sequential(wide_in, torch.nn.ReLU(), wide_mid, *list(net)[3:])
    x = torch.randn(3, 5)
    a = engine.attribute(net, x, 2, steps=40, rule="gauss-legendre", output="softmax")
    b = engine.attribute(twin, x, 2, steps=40, rule="gauss-legendre", output="softmax")
    torch.testing.assert_close(a.attributions, b.attributions, atol=1e-6, rtol=1e-4)


# --- one scan gives everything -------------------------------------------------------------------

def test_tuple_inputs_are_scaled_together(engine):
    w1, w2 = torch.randn(3), torch.randn(4)
    f = lambda a, b: torch.stack([(a * w1).sum(1) * (b * w2).sum(1)], 1)  # bilinear
    x = (torch.randn(1, 3), torch.randn(1, 4))
    result = engine.attribute(f, x, 0, steps=20, rule="gauss-legendre")
    assert isinstance(result.attributions, tuple) and result.attributions[1].shape == (1, 4)
    # F(alpha x) = alpha^2 F(x): each input gets half of F(x)
    fx = float(f(*x))
    assert float(result.attributions[0].sum()) == pytest.approx(fx / 2, rel=1e-5, abs=1e-6)
    assert float(result.attributions[1].sum()) == pytest.approx(fx / 2, rel=1e-5, abs=1e-6)


def test_several_targets_equal_separate_runs_and_share_forwards():
    calls = []
    net = relu_net()

    def forward(z):
        calls.append(z.shape[0])
        return net(z)

    engine = AttributionEngine(device="cpu", max_batch=1000)
    x = torch.randn(1, 6)
    both = engine.attribute(forward, x, [0, 3], steps=30, rule="trapezoid", output="softmax")
    forwards_for_both = len(calls)
    for j, t in enumerate([0, 3]):
        single = engine.attribute(forward, x, t, steps=30, rule="trapezoid", output="softmax")
        torch.testing.assert_close(both.attributions[j], single.attributions)
        np.testing.assert_allclose(both.scores[:, :, j], single.scores[:, :, 0])
    assert len(calls) == 3 * forwards_for_both  # one pass serves both targets


def test_chunked_equals_unchunked_and_per_example_targets_equal_single_runs():
    net = relu_net()
    x = torch.randn(3, 6)
    targets = torch.tensor([0, 2, 1])
    whole = AttributionEngine(device="cpu", max_batch=10_000).attribute(net, x, targets, steps=33,
                                                                        rule="gauss-legendre", output="softmax",
                                                                        probe_alphas=[0.1])
    chunked = AttributionEngine(device="cpu", max_batch=5).attribute(net, x, targets, steps=33, rule="gauss-legendre",
                                                                     output="softmax", probe_alphas=[0.1])
    torch.testing.assert_close(whole.attributions, chunked.attributions)
    # a score is the softmax of logits from 3 layers of float32 sums whose |terms| add up to at most `size` (the
    # net with |W|, |b| on |x|); another batch split rounds each layer anew: |dF| <= 2 F * 2 * 3 eps * size
    size = x.abs()
    for layer in net[::2]:
        size = size @ layer.weight.abs().T + layer.bias.abs()
    np.testing.assert_allclose(whole.scores, chunked.scores, rtol=12 * EPS * float(size.max()))
    for n in range(3):
        alone = AttributionEngine(device="cpu").attribute(net, x[n:n + 1], int(targets[n]), steps=33,
                                                          rule="gauss-legendre", output="softmax")
        torch.testing.assert_close(whole.attributions[n:n + 1], alone.attributions, atol=1e-7, rtol=1e-5)


def test_interior_gradient_at_one_is_the_plain_gradient_and_trend_is_f(engine):
    net = relu_net()
    x = torch.randn(1, 6)
    result = engine.attribute(net, x, 1, steps=10, rule="midpoint", output="softmax", probe_alphas=[0.25])
    z = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.softmax(net(z), 1)[0, 1], z)
    torch.testing.assert_close(result.gradient_at_input, grad)
    with torch.no_grad():
        for k, alpha in enumerate(result.alphas):
            assert result.scores[k, 0, 0] == pytest.approx(float(torch.softmax(net(alpha * x), 1)[0, 1]), rel=1e-5)
            assert result.raw_scores[k, 0, 0] == pytest.approx(float(net(alpha * x)[0, 1]), rel=1e-5, abs=1e-6)
    z = (0.25 * x).requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.softmax(net(z), 1)[0, 1], z)
    torch.testing.assert_close(result.interior_gradient(0.25), grad)
    assert result.score_baseline[0, 0] == pytest.approx(result.scores[0, 0, 0])
    with pytest.raises(KeyError, match="not kept"):
        result.interior_gradient(0.3)


def test_layer_distances_vanish_at_alpha_one(engine):
    net = relu_net()
    result = engine.attribute(net, torch.randn(1, 6), 0, steps=8, rule="trapezoid", layer=net[1])
    assert result.layer_l2.shape == (len(result.alphas), 1)
    assert result.layer_l2[-1, 0] == pytest.approx(0.0, abs=1e-6)
    assert result.layer_cosine[-1, 0] == pytest.approx(0.0, abs=16 * EPS)  # 1 - cos(a, a): sums of 16 units' squares
    assert result.layer_l2[0, 0] > 0


# --- engine behaviour ----------------------------------------------------------------------------

def test_threads_give_exactly_the_sequential_results():
    net = relu_net()
    inputs = [torch.randn(1, 6) for _ in range(8)]
    engine = AttributionEngine(device="cpu", max_batch=7, cache_size=0)
    sequential = [engine.attribute(net, x, 1, steps=24, rule="trapezoid", output="softmax").attributions
                  for x in inputs]
    threaded = [None] * len(inputs)

    def work(i):
        threaded[i] = engine.attribute(net, inputs[i], 1, steps=24, rule="trapezoid", output="softmax").attributions

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    with torch.no_grad():  # the caller's grad mode must not matter: the engine sets its own
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for a, b in zip(sequential, threaded):
        assert torch.equal(a, b)


class Interrupt(BaseException):
    """Like Streamlit's rerun exception: derived from BaseException."""


def test_lock_is_released_on_base_exceptions_and_parameters_stay_frozen(engine):
    net = relu_net()

    def interrupted(z):
        raise Interrupt()

    with pytest.raises(Interrupt):
        engine.attribute(interrupted, torch.randn(1, 6), 0, steps=4)
    result = engine.attribute(net, torch.randn(1, 6), 0, steps=4)  # would deadlock if the lock were held
    assert result.steps_used == 4
    assert all(not p.requires_grad and p.grad is None for p in net.parameters())


def test_cache_is_exact_and_bounded():
    net = relu_net()
    engine = AttributionEngine(device="cpu", cache_size=2)
    x = torch.randn(1, 6)
    first = engine.attribute(net, x, 0, steps=8, model_key="net")
    assert engine.attribute(net, x.clone(), 0, steps=8, model_key="net") is first
    nudged = x.clone()
    nudged[0, 0] = torch.nextafter(nudged[0, 0], torch.tensor(10.0))
    assert engine.attribute(net, nudged, 0, steps=8, model_key="net") is not first
    assert engine.attribute(net, x, 0, steps=9, model_key="net") is not first
    assert engine.attribute(net, x, 0, steps=8, model_key="net") is not first  # evicted (size 2)


def test_cache_is_bounded_by_bytes():
    net = relu_net()
    one = AttributionEngine(device="cpu").attribute(net, torch.randn(1, 6), 0, steps=8)
    engine = AttributionEngine(device="cpu", cache_size=100, cache_bytes=int(2.5 * one.nbytes()))
    x = torch.randn(1, 6)
    first = engine.attribute(net, x, 0, steps=8, model_key="net")
    engine.attribute(net, x + 1, 0, steps=8, model_key="net")
    assert engine.attribute(net, x, 0, steps=8, model_key="net") is first
    engine.attribute(net, x + 2, 0, steps=8, model_key="net")
    engine.attribute(net, x + 3, 0, steps=8, model_key="net")  # two results fit: x goes, least recently used
    assert engine.attribute(net, x, 0, steps=8, model_key="net") is not first


def test_nonfinite_scores_are_reported_not_summed(engine):
    f = lambda z: torch.log(z).sum(1, keepdim=True)  # (log 0 at the baseline
    result = engine.attribute(f, torch.ones(1, 3), 0, steps=8, rule="trapezoid")
    assert result.nonfinite and "non-finite" in result.message


def test_progress_is_reported_after_each_batch():
    seen = []
    AttributionEngine(device="cpu", max_batch=8).attribute(relu_net(), torch.randn(1, 6), 0, steps=30,
                                                           progress=seen.append)
    assert len(seen) >= 4 and seen == sorted(seen) and seen[-1] == 1.0


def test_out_of_memory_halves_the_batch_and_gives_the_same_answer():
    net = relu_net()
    sizes = []

    def tight(z):
        sizes.append(z.shape[0])
        if z.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("simulated")
        return net(z)

    x = torch.randn(1, 6)
    result = AttributionEngine(device="cpu", max_batch=32).attribute(tight, x, 0, steps=40, rule="midpoint")
    reference = AttributionEngine(device="cpu").attribute(net, x, 0, steps=40, rule="midpoint")
    torch.testing.assert_close(result.attributions, reference.attributions)
    assert sizes[:4] == [32, 16, 8, 4] and max(sizes[3:]) <= 4


def test_bad_requests_get_clear_errors(engine):
    net = relu_net()
    with pytest.raises(ValueError, match="batch dimension"):
        engine.attribute(net, torch.tensor(1.0), 0)
    with pytest.raises(ValueError, match="floating point"):
        engine.attribute(net, torch.ones(1, 6, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="does not fit"):
        engine.attribute(net, torch.ones(1, 6), 0, baseline=torch.ones(1, 5))
    with pytest.raises(ValueError, match=r"scores \[batch, classes\]"):
        engine.attribute(lambda z: z.sum(), torch.ones(1, 6), 0)
    with pytest.raises(ValueError, match="tolerance"):
        engine.attribute(net, torch.ones(1, 6), 0, rule="adaptive", tolerance=2)


def test_mixed_precision_keeps_float32_gradients_and_stays_close():
    net = relu_net(inputs=16, hidden=64, classes=5)
    x = torch.randn(2, 16)
    full = AttributionEngine(device="cpu").attribute(net, x, 3, steps=32, rule="gauss-legendre", output="softmax")
    half = AttributionEngine(device="cpu", amp="bf16").attribute(net, x, 3, steps=32, rule="gauss-legendre",
                                                                  output="softmax")
    assert half.attributions.dtype == torch.float32
    scale = float(full.attributions.abs().max())
    assert float((half.attributions - full.attributions).abs().max()) < 0.05 * scale
    with pytest.raises(ValueError, match="amp"):
        AttributionEngine(device="cpu", amp="int8")


def test_out_of_memory_after_the_backward_pass_is_not_counted_twice(monkeypatch):
    import ig_core.path.scan as scan_module

    real, failures = scan_module.PointRecord.fill, []

    def failing_once(record, *values):  # memory runs out while the chunk's results are being kept
        if len(failures) == 3:  # after some of the chunk's points are kept
            failures.append(1)
            raise torch.cuda.OutOfMemoryError("simulated")
        failures.append(0)
        return real(record, *values)

    net = relu_net()
    x = torch.randn(1, 6)
    reference = AttributionEngine(device="cpu").attribute(net, x, 0, steps=40, rule="midpoint")
    monkeypatch.setattr(scan_module.PointRecord, "fill", failing_once)
    result = AttributionEngine(device="cpu", max_batch=64).attribute(net, x, 0, steps=40, rule="midpoint")
    assert 1 in failures
    torch.testing.assert_close(result.attributions, reference.attributions)


def test_path_points_are_the_nodes_then_probes_and_ends_not_among_them():
    alphas, weights = path_points("midpoint", 4, probes=[0.125, 0.3])
    np.testing.assert_allclose(alphas, [0.125, 0.375, 0.625, 0.875, 0.0, 0.3, 1.0])
    np.testing.assert_allclose(weights, [0.25] * 4 + [0.0] * 3)
    result = AttributionEngine(device="cpu").attribute(relu_net(), torch.randn(1, 6), 0, steps=4, rule="midpoint",
                                                       probe_alphas=[0.125, 0.3])
    assert sorted(result.alphas) == sorted(alphas) and result.steps_used == 4


def test_scans_of_two_threads_take_turns_batch_by_batch():
    """A short scan submitted during a long one runs at the long one's next batch, not after its end."""
    net = relu_net()
    engine = AttributionEngine(device="cpu", max_batch=4, cache_size=0)
    order, started = [], threading.Event()

    def long_forward(z):
        order.append("long")
        if len(order) == 1:
            started.set()
            while not engine._device_lock._waiters:  # hold the first batch until the short scan queues
                threading.Event().wait(0.01)
        return net(z)

    def short_forward(z):
        order.append("short")
        return net(z)

    worker = threading.Thread(target=lambda: engine.attribute(long_forward, torch.randn(1, 6), 0, steps=40))
    worker.start()
    started.wait()
    engine.attribute(short_forward, torch.randn(1, 6), 0, steps=2)  # 4 path points: one batch
    worker.join()
    assert order[:3] == ["long", "short", "long"] and order.count("long") == 10  # 40 points, 4 per batch


def test_a_batch_larger_than_the_engines_is_bounded_by_its_measured_memory():
    net = relu_net(inputs=64, hidden=256).requires_grad_(False)  # frozen, as engine.prepare leaves a model
    x = torch.randn(1, 64)
    sizes = []

    def forward(z):
        sizes.append(z.shape[0])
        return net(z)

    reference = AttributionEngine(device="cpu", max_batch=16, cache_size=0)
    expected = reference.attribute(forward, x, 0, steps=64, output="softmax")
    assert expected.extras["bytes_per_point"] is None  # the engine's own batch size is not measured
    measured = AttributionEngine(device="cpu", max_batch=16, cache_size=0, memory_budget=1 << 40).attribute(
        forward, x, 0, steps=64, output="softmax", max_batch=4096).extras["bytes_per_point"]
    # the backward pass must keep both hidden layers' activations (256 float32 each); all the activations,
    # the input and the pre-activations included, are an upper bound (doubled: MEMORY_PER_SAVED_BYTE)
    assert 2 * 4 * 2 * 256 <= measured <= 2 * 4 * (64 + 4 * 256 + 2 * 4)
    sizes.clear()
    engine = AttributionEngine(device="cpu", max_batch=16, cache_size=0, memory_budget=8 * measured)
    bounded = engine.attribute(forward, x, 0, steps=64, output="softmax", max_batch=4096)
    assert sizes[0] == 1 and max(sizes) == 8 and sum(sizes) == bounded.points_evaluated  # measured, then 8 at a time
    assert bounded.extras["max_batch"] == 8
    torch.testing.assert_close(bounded.attributions, expected.attributions)


def test_an_input_equal_to_its_baseline_has_nothing_to_attribute(engine):
    net = relu_net()
    x = torch.randn(2, 6)
    same = engine.attribute(net, x, [0, 1], baseline=x, steps=8, output="softmax")
    assert same.nothing_to_attribute.all() and np.all(same.relative_delta == 0)
    other = engine.attribute(net, x, [0, 1], baseline=torch.zeros_like(x), steps=8, output="softmax")
    assert not other.nothing_to_attribute.any()
    for rule in ("adaptive", "trapezoid"):  # the adaptive rule stops at once: its error is zero, not 0 / 0
        assert engine.attribute(net, x, 0, baseline=x, steps=4, rule=rule).points_evaluated == 4


def test_every_option_of_attribute_is_part_of_the_cache_key():
    """The cache key is the digest of the tensors and a frozen ScanRequest: an option of attribute() missing from
    it would give stale results. Left out: the tensors themselves, the callbacks progress and partial_results (a
    result stopped early is not cached), and max_batch (chunking only)."""
    import dataclasses
    import inspect

    from ig_core.cache import ScanRequest
    from ig_core.path.options import PathOptions

    options = set(inspect.signature(AttributionEngine.attribute).parameters) - {
        "self", "forward", "inputs", "target", "baseline", "progress", "partial_results", "max_batch"}
    fields = ({f.name for f in dataclasses.fields(ScanRequest)} - {"single_target", "tuple_inputs", "path"}
              | {f.name for f in dataclasses.fields(PathOptions)})
    assert options == fields
    net = relu_net()
    engine = AttributionEngine(device="cpu", max_batch=64)
    x = torch.randn(1, 6)
    first = engine.attribute(net, x, 0, steps=8, output="softmax")
    assert engine.attribute(net, x, 0, steps=8, output="softmax") is first
    for change in (dict(steps=9), dict(output="identity"), dict(probe_alphas=[0.5]), dict(keep_all_gradients=True),
                   dict(rule="midpoint"), dict(model_key="other")):
        assert engine.attribute(net, x, 0, **{"steps": 8, "output": "softmax", **change}) is not first, change
