"""The method interface: registry, options, integrated gradients, the gradient and gradient x input against Captum,
and what every method shares through the engine (cache key, batching under the lock, refusals)."""
import numpy as np
import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients, Saliency
from small_nets import EPS32, gradient_rounding, small_net

from ig_core import METHODS, AttributionEngine, ScanSettings, method, read_off_scan
from ig_core.methods.base import AttributionMethod

pytestmark = pytest.mark.numeric


@pytest.fixture
def engine():
    return AttributionEngine(device="cpu", max_batch=8)


def test_every_registered_method_declares_what_it_is_and_refuses_unknown_options():
    for name, cls in METHODS.items():
        assert issubclass(cls, AttributionMethod) and cls.name == name and cls.label
        assert cls.completeness is not None or cls.no_completeness, name  # says why it has none
        method(name)  # the defaults are valid
    with pytest.raises(ValueError, match="unknown method 'lime'"):
        method("lime")
    with pytest.raises(ValueError, match="no option steps"):
        method("gradient", steps=3)
    with pytest.raises(ValueError, match="no option"):
        ScanSettings(method="gradient", method_options={"steps": 3})


def test_gradient_and_gradient_x_input_equal_captums_saliency_and_input_x_gradient(engine):
    net = small_net()
    x = torch.randn(3, 6)
    targets = torch.tensor([0, 2, 1])
    rounding = gradient_rounding(net)  # batches of other sizes may take other kernels: other rounding
    gradient = engine.attribute(net, x, targets, method="gradient")
    torch.testing.assert_close(gradient.attributions, Saliency(net).attribute(x, target=targets, abs=False),
                               rtol=0, atol=rounding)
    absolute = engine.attribute(net, x, targets, method="gradient", method_options={"absolute": True})
    torch.testing.assert_close(absolute.attributions, Saliency(net).attribute(x, target=targets), rtol=0,
                               atol=rounding)
    product = engine.attribute(net, x, targets, method="gradient_x_input")
    torch.testing.assert_close(product.attributions, InputXGradient(net).attribute(x, target=targets), rtol=0,
                               atol=rounding * float(x.abs().max()))
    for result in (gradient, product):
        assert result.completeness is None and np.isnan(result.delta).all() and "no completeness" in result.summary()
        assert result.points_evaluated == 2  # the input, and the baseline by a forward pass


def test_gradient_and_gradient_x_input_read_off_a_scan_for_free(engine):
    net = small_net()
    x = torch.randn(2, 6)
    scan = engine.attribute(net, x, [0, 1], steps=8)
    for name in ("gradient", "gradient_x_input"):
        direct = engine.attribute(net, x, [0, 1], method=name)
        free = read_off_scan(scan, x, name)
        assert free.points_evaluated == 0
        # the scan evaluated the input in a larger batch: other kernels may round differently
        torch.testing.assert_close(free.attributions, direct.attributions, rtol=0,
                                   atol=gradient_rounding(net) * max(1.0, float(x.abs().max())))
        # F is a float32 sum of 16 hidden terms |W2 tanh|: a few roundings of the largest output
        np.testing.assert_allclose(free.score_input, direct.score_input, rtol=0,
                                   atol=16 * EPS32 * float(net[2].weight.abs().sum(1).max() + net[2].bias.abs().max()))
    with pytest.raises(ValueError, match="cannot be read off"):
        read_off_scan(scan, x, "smoothgrad")


def test_integrated_gradients_by_name_is_the_engines_scan(engine):
    net = small_net()
    x = torch.randn(2, 6)
    default = engine.attribute(net, x, 1, steps=12, rule="gauss-legendre")
    named = AttributionEngine(device="cpu", max_batch=8).attribute(net, x, 1, steps=12, rule="gauss-legendre",
                                                                   method="integrated_gradients")
    torch.testing.assert_close(named.attributions, default.attributions, rtol=0, atol=0)
    assert named.method == default.method == "integrated_gradients" and named.completeness == "F(input) - F(baseline)"
    captum = IntegratedGradients(net).attribute(x, target=1, n_steps=12, method="gausslegendre")
    # same nodes and weights (sum 1): each gradient rounds within gradient_rounding, the 12-term sum adds 12 roundings
    bound = (gradient_rounding(net) + 12 * EPS32 * float(default.attributions.abs().max())) * float(x.abs().max())
    torch.testing.assert_close(default.attributions, captum, rtol=0, atol=bound)


def test_captums_trapezoid_is_short_by_one_step_where_ours_is_exact_on_a_linear_model(engine):
    """On F = w.x the integrated gradients are exactly w * x. Captum's riemann_trapezoid weights sum to (n-1)/n."""
    linear = torch.nn.Linear(5, 1, bias=False)
    x = torch.randn(1, 5)
    exact = (linear.weight * x).detach()
    ours = engine.attribute(linear, x, 0, steps=50, rule="trapezoid").attributions
    captum = IntegratedGradients(linear).attribute(x, target=0, n_steps=50, method="riemann_trapezoid")
    scale = float(exact.abs().sum())
    assert float((ours - exact).abs().max()) <= 64 * EPS32 * scale  # 50 float32 terms
    assert float((captum - exact * 49 / 50).abs().max()) <= 64 * EPS32 * scale
    assert float((captum - exact).abs().max()) >= 0.01 * float(exact.abs().max())


def test_the_method_and_its_options_are_part_of_the_cache_key():
    net = small_net()
    engine = AttributionEngine(device="cpu")
    x = torch.randn(1, 6)
    first = engine.attribute(net, x, 0, method="smoothgrad", method_options={"samples": 3})
    assert engine.attribute(net, x, 0, method="smoothgrad", method_options={"samples": 3}) is first
    assert engine.attribute(net, x, 0, method="smoothgrad", method_options={"samples": 4}) is not first
    assert engine.attribute(net, x, 0, method="gradient") is not first


def test_a_methods_points_go_through_the_engines_batches_under_its_lock():
    net = small_net()
    sizes, turns = [], []

    class CountingLock:
        def __enter__(self):
            turns.append(1)

        def __exit__(self, *exc):
            pass

    def forward(z):
        sizes.append(z.shape[0])
        return net(z)

    engine = AttributionEngine(device="cpu", max_batch=4, cache_size=0)
    engine._device_lock = CountingLock()
    x = torch.randn(1, 6)
    engine.attribute(forward, x, 0, method="smoothgrad", method_options={"samples": 4})  # 4 copies, 2 ends each
    assert sizes == [4, 4] and turns == [1, 1]  # the copies' gradients in one batch, their baselines' scores in one
    sizes.clear(), turns.clear()
    engine.attribute(forward, x, 0, method="smoothgrad", method_options={"samples": 5})
    assert sizes == [5, 5] and turns == [1, 1]  # a batch holds whole points: one end of every copy


def test_method_attribute_is_a_captum_style_entry_point(engine):
    net = small_net()
    x = torch.randn(2, 6)
    via_method = method("gradient_x_input").attribute(net, x, 2, engine=engine)
    via_engine = engine.attribute(net, x, 2, method="gradient_x_input")
    assert via_method is via_engine  # the same request: the engine's cache answers


def test_scan_settings_carry_the_method_to_the_engine():
    settings = ScanSettings().with_method("smoothgrad", samples=4, noise=0.1)
    assert settings.method_options == (("noise", 0.1), ("samples", 4))
    assert settings.options()["method_options"] == {"noise": 0.1, "samples": 4}
    assert hash(settings) == hash(ScanSettings(method="smoothgrad", method_options={"samples": 4, "noise": 0.1}))
