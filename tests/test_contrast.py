"""Contrastive targets, "why a rather than b": F = out[a] - out[b], one more selected score in the same scan."""
import numpy as np
import pytest
import torch
from small_nets import EPS32, gradient_rounding, small_net

from ig_core import CONTRAST_OUTPUTS, METHODS, AttributionEngine, Contrast

pytestmark = pytest.mark.numeric


@pytest.fixture
def engine():
    return AttributionEngine(device="cpu", max_batch=64)


@pytest.mark.parametrize("rule", ["trapezoid", "left", "gauss-legendre", "adaptive"])
def test_a_linear_model_gets_exactly_x_times_the_difference_of_the_two_rows(engine, rule):
    """out = W x + c: the path derivative of out[a] - out[b] is constant, so every rule whose weights sum to 1 gives
    x * (W[a] - W[b]) from a zero baseline, and the attributions add up to F(x) - F(0)."""
    torch.manual_seed(1)
    linear = torch.nn.Linear(7, 5)
    x = torch.randn(3, 7)
    a, b = 3, 1
    result = engine.attribute(linear, x, Contrast(a, b), steps=9, rule=rule)
    w, c, x64 = linear.weight.double(), linear.bias.double(), x.double()
    expected = x64 * (w[a] - w[b])
    # the gradient W[a] - W[b] is a float32 sum of two terms (an eps of |W[a]| + |W[b]|, 2 more where kernels round
    # by shape); the K-node weighted sum adds K roundings of it and the product with x one more
    rows = (w[a].abs() + w[b].abs()) * x64.abs()
    k = result.steps_used
    assert torch.all((result.attributions.double() - expected).abs() <= (k + 4) * EPS32 * rows)
    # class indices the request names, copied, not computed: exact
    assert np.array_equal(result.rather_than, np.full((3, 1), b)) and np.array_equal(result.targets, np.full((3, 1), a))
    # F(x): two float32 dot products of 7 terms and the bias (8 roundings, 2 more where kernels round by shape) and
    # their difference (1); F(0) = c[a] - c[b]: one rounding
    magnitudes = (x64.abs() @ (w[a].abs() + w[b].abs()) + c[a].abs() + c[b].abs()).numpy()
    bound = rows.sum(1).numpy() * (k + 4) * EPS32 + 12 * EPS32 * magnitudes
    assert np.all(np.abs(result.delta[:, 0]) <= bound)
    exact_f = (x64 @ (w[a] - w[b]) + c[a] - c[b]).numpy()
    assert np.all(np.abs(result.score_input[:, 0] - exact_f) <= 12 * EPS32 * magnitudes)


def test_log_softmax_contrast_equals_the_logit_contrast_since_the_normaliser_cancels(engine):
    """log p_a - log p_b = z_a - z_b. The logits' gradient is the same too: log_softmax's backward is
    g - softmax * sum(g) with g = e_a - e_b, whose sum is exactly 0 (1 - 1 and zeros, in any order), so both scans
    take the very same backward pass (same shapes, same kernels): equal attributions, bit for bit."""
    net = small_net(outputs=4, seed=3)
    x = torch.randn(2, 6)
    target = Contrast(2, 0)
    logits = engine.attribute(net, x, target, steps=24, rule="trapezoid", output="identity")
    log_probabilities = engine.attribute(net, x, target, steps=24, rule="trapezoid", output="log_softmax")
    assert torch.equal(log_probabilities.attributions, logits.attributions)
    # the scores differ by rounding only: log_softmax rounds z_c - m and the result (m the row's maximum), and the
    # normaliser, one float per row, cancels; each difference rounds once more
    for end, scores_id, scores_log in ((x, logits.score_input, log_probabilities.score_input),
                                       (torch.zeros_like(x), logits.score_baseline, log_probabilities.score_baseline)):
        z = net(end).double()
        m = z.max(1, keepdim=True).values
        log_p = torch.log_softmax(z, 1)
        bound = EPS32 * ((z[:, 2] - m[:, 0]).abs() + (z[:, 0] - m[:, 0]).abs() + log_p[:, 2].abs()
                         + log_p[:, 0].abs() + (z[:, 2] - z[:, 0]).abs())
        assert np.all(np.abs(scores_log[:, 0] - scores_id[:, 0]) <= bound.detach().numpy())


def test_several_targets_and_a_contrast_in_one_scan_equal_separate_calls(engine):
    net = small_net(outputs=4)
    x = torch.randn(2, 6)
    a, b = 1, 3
    together = engine.attribute(net, x, [a, b, Contrast(a, b)], steps=16, rule="gauss-legendre")
    assert together.attributions.shape == (3, 2, 6)
    # class indices (copied, not computed): exact
    assert np.array_equal(together.targets, [[a, b, a]] * 2) and np.array_equal(together.rather_than, [[-1, -1, b]] * 2)
    # another batch shape may take other kernels: each gradient rounds within gradient_rounding (a contrast's within
    # twice that: its hidden terms carry |W2[a]| + |W2[b]|), the 16-node sum adds 16 roundings, the product with x one
    for j, target in enumerate([a, b, Contrast(a, b)]):
        alone = engine.attribute(net, x, target, steps=16, rule="gauss-legendre")
        rounding = (2 if j == 2 else 1) * gradient_rounding(net)
        bound = (rounding + 17 * EPS32 * float(alone.attributions.abs().max())) * float(x.abs().max())
        torch.testing.assert_close(together.attributions[j], alone.attributions, rtol=0, atol=bound)
        np.testing.assert_array_equal(together.select(targets=j).rather_than, alone.rather_than)  # indices: exact
    # F of the contrast is the difference of the two Fs of the same forward pass: one float32 rounding of it
    difference = together.score_input[:, 0] - together.score_input[:, 1]
    assert np.all(np.abs(together.score_input[:, 2] - difference) <= EPS32 * np.abs(difference))
    # by linearity of the integral, the contrast's map is a's minus b's (each within its rounding, as above)
    linear_bound = (4 * gradient_rounding(net) + 17 * EPS32 * float(together.attributions.abs().max())) * float(
        x.abs().max())
    torch.testing.assert_close(together.attributions[2], together.attributions[0] - together.attributions[1],
                               rtol=0, atol=linear_bound)


def test_per_example_contrasts_in_every_form(engine):
    net = small_net(outputs=4)
    x = torch.randn(2, 6)
    by_tensors = engine.attribute(net, x, Contrast(torch.tensor([0, 2]), torch.tensor([1, 3])), steps=8)
    by_lists = engine.attribute(net, x, [[Contrast(0, 1)], [Contrast(2, 3)]], steps=8)
    assert by_tensors.attributions.shape == (2, 6) and by_lists.attributions.shape == (1, 2, 6)
    # the two forms make the same targets [2, 1], so the same scan (same batches, same kernels): equal bit for bit
    assert torch.equal(by_tensors.attributions, by_lists.attributions[0])
    assert np.array_equal(by_tensors.rather_than, [[1], [3]])  # class indices: exact
    # one side of one class pairs with every target of the other
    several = engine.attribute(net, x, Contrast([0, 2], 1), steps=8)
    assert np.array_equal(several.targets, [[0, 2]] * 2) and np.array_equal(several.rather_than, [[1, 1]] * 2)
    mixed = engine.attribute(net, x, [[Contrast(0, 1)], [2]], steps=8)
    assert np.array_equal(mixed.rather_than, [[1], [-1]])


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_explains_the_difference_of_the_two_scores(engine, name):
    """Each method sees scores through the evaluator only: in one call, the contrast's F(input) is the difference of
    its two targets' (logits bounded by a final tanh: |z| <= 1, so one rounding of a difference is an eps)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(144, 3),
                              torch.nn.Tanh())
    x = torch.rand(2, 3, 8, 8)
    references = torch.rand(4, 3, 8, 8) if METHODS[name].reference_set else None
    options = {"steps": 8} if name in ("guided_ig", "blur_ig", "idgi") else {}
    options.update({"samples": 3} if name == "smoothgrad" else {})
    result = engine.attribute(net, x, [0, 2, Contrast(0, 2)], references, steps=8, method=name,
                              method_options=options)
    assert np.array_equal(result.rather_than, [[-1, -1, 2]] * 2)
    difference = result.score_input[:, 0] - result.score_input[:, 1]
    assert np.all(np.abs(result.score_input[:, 2] - difference) <= EPS32)
    assert result.attributions.shape == (3, 2, 3, 8, 8)


def test_contrasts_are_refused_where_a_difference_of_scores_is_no_difference_of_evidence(engine):
    net, x = small_net(), torch.randn(2, 6)
    assert set(CONTRAST_OUTPUTS) == {"identity", "log_softmax"}
    for output in ("softmax", "sigmoid"):
        with pytest.raises(ValueError, match=r'output=\"identity\" \(logits\) or \"log_softmax\"'):
            engine.attribute(net, x, Contrast(0, 1), output=output)
        with pytest.raises(ValueError, match="only for logits or log-probabilities"):
            engine.attribute(net, x, [0, Contrast(0, 1)], output=output)
        with pytest.raises(ValueError, match="only for logits or log-probabilities"):
            engine.completeness_delta(net, x, torch.zeros(2, 6), Contrast(0, 1), output=output)
    engine.attribute(net, x, [0, 1], output="softmax", steps=4)  # plain targets keep every output
    with pytest.raises(ValueError, match="rather than itself explains nothing"):
        Contrast(1, 1)
    with pytest.raises(ValueError, match="rather than itself explains nothing"):
        engine.attribute(net, x, Contrast(torch.tensor([0, 1]), torch.tensor([2, 1])))
    with pytest.raises(ValueError, match="0 or more"):
        engine.attribute(net, x, Contrast(0, -1))
    with pytest.raises(ValueError, match="out of range for 3 outputs"):
        engine.attribute(net, x, Contrast(0, 5))
    with pytest.raises(ValueError, match="name 2 and 3 targets"):
        engine.attribute(net, x, Contrast([0, 1], [2, 1, 0]))
    with pytest.raises(ValueError, match="nothing to contrast"):
        Contrast(None, 1)


def test_a_contrast_has_its_own_cache_key(engine):
    net, x = small_net(), torch.randn(1, 6)
    plain = engine.attribute(net, x, 0, steps=8, model_key="net")
    contrast = engine.attribute(net, x, Contrast(0, 1), steps=8, model_key="net")
    assert contrast is not plain and not torch.equal(contrast.attributions, plain.attributions)
    assert engine.attribute(net, x, Contrast(0, 2), steps=8, model_key="net") is not contrast
    assert engine.attribute(net, x, Contrast(0, 1), steps=8, model_key="net") is contrast
    assert engine.attribute(net, x, 0, steps=8, model_key="net") is plain


def test_the_completeness_delta_of_a_contrast_is_the_scans_own(engine):
    net, x = small_net(), torch.randn(2, 6)
    target = [1, Contrast(1, 0)]
    result = engine.attribute(net, x, target, steps=16, rule="gauss-legendre")
    delta = engine.completeness_delta(net, x, result.attributions, target)
    # F at both ends from a batch of another shape: each score within 16 roundings of its |W2| tanh terms, twice
    # for a contrast, at two ends
    scale = float(net[2].weight.abs().sum(1).max() + net[2].bias.abs().max())
    np.testing.assert_allclose(delta, result.delta, rtol=0, atol=4 * 16 * EPS32 * scale)


def test_families_declare_the_output_they_explain_contrasts_on():
    from families.contract import FamilyError
    from families.registry import FAMILIES
    from ig_core import ScanSettings

    assert FAMILIES["vision"].contrast_output == "identity"  # the logits
    for name, family in FAMILIES.items():
        assert family.contrast_output is None or family.contrast_output in CONTRAST_OUTPUTS, name
    # a family without contrasts refuses one before the engine runs
    with pytest.raises(FamilyError, match="offers no contrasts"):
        FAMILIES["tabular"].attribute(None, None, None, None, [0, Contrast(0, 1)], ScanSettings())
