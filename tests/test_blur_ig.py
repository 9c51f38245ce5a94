"""Blur IG against scipy's Gaussian filter and PAIR's saliency.core.BlurIG, a closed form on a linear model and its
own one-at-a-time runs."""
import copy

import numpy as np
import pytest
import saliency.core as pair
import torch
from scipy import ndimage

from ig_core import AttributionEngine
from ig_core.methods.blur_ig import BlurIG

EPS = float(torch.finfo(torch.float32).eps)
pytestmark = [pytest.mark.numeric, pytest.mark.usefixtures("one_thread")]  # tiny nets: threads only contend

SIDE = 16


@pytest.fixture
def engine():
    return AttributionEngine(device="cpu", cache_size=0)


def conv_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(), torch.nn.AdaptiveAvgPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(16, 5))


def scipy_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """PAIR's blur of an HWC image, on our [..., H, W] layout."""
    return ndimage.gaussian_filter(images, sigma=[0] * (images.ndim - 2) + [sigma, sigma], mode="constant")


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.7, 3.0, 40.0])  # 0.1: no reach (identity); 40: wider than the image
def test_blur_equals_scipy(sigma):
    torch.manual_seed(1)
    images = torch.randn(2, 3, SIDE, 9)
    points, _ = BlurIG().blur_path(images, np.array([sigma, 0.0]))
    # each blurred value sums at most SIDE + 9 float32 products of weights <= 1 (scipy sums in float64)
    tolerance = (SIDE + 9) * EPS * float(images.abs().max())
    np.testing.assert_allclose(points[0].numpy(), scipy_blur(images.double().numpy(), sigma), rtol=0, atol=tolerance)


def gradient_bound(net, target: int) -> torch.Tensor:
    """Per pixel [C, H, W]: the sum over the net's paths of |weights| (|softplus'| <= 1, pooling weights 1/64), which
    bounds |dF_t/dx| and the sum of |terms| that its float32 backward pass adds up."""
    z = torch.zeros(1, 3, SIDE, SIDE, dtype=torch.float64, requires_grad=True)
    hidden = torch.nn.functional.conv2d(z, net[0].weight.abs().double(), padding=1)
    score = torch.nn.functional.adaptive_avg_pool2d(hidden, 2).flatten(1) @ net[4].weight.abs().double().T
    bound, = torch.autograd.grad(score[0, target], z)
    return bound[0]


def pair_blur_ig(net, image: torch.Tensor, target: int, **options):
    """PAIR's BlurIG mask [C, H, W] of one image in float64 (its layout is HWC), and per pixel a bound on the sum of
    |terms| of its Riemann sum, sum_k dsigma_k |dblur_k / dsigma| |gradient_k|: the scale of the rounding in ours."""
    net64 = copy.deepcopy(net).double()

    def call(batch, call_model_args=None, expected_keys=None):
        z = torch.tensor(np.asarray(batch)).permute(0, 3, 1, 2).requires_grad_(True)
        gradient, = torch.autograd.grad(net64(z)[:, target].sum(), z)
        return {pair.INPUT_OUTPUT_GRADIENTS: gradient.permute(0, 2, 3, 1).numpy()}

    mask = pair.BlurIG().GetMask(image.permute(1, 2, 0).double().numpy(), call, **options).transpose(2, 0, 1)
    method = BlurIG(**options)
    sigmas, step = method.sigmas(), method.options.grad_step
    x = image.double().numpy()
    slopes = sum(width * np.abs(scipy_blur(x, sigma + step) - scipy_blur(x, sigma)) / step
                 for width, sigma in zip(np.diff(sigmas), sigmas))
    return torch.as_tensor(mask), torch.as_tensor(slopes) * gradient_bound(net, target)


# ours rounds the blurs (sums of 2 * SIDE terms), the net's gradient (sums of 27 and 16 terms) and the Riemann sum
# in float32
TERMS_ROUNDING = (2 * SIDE + 27 + 16) * EPS


@pytest.mark.parametrize("options", [{}, {"sqrt": True}, {"steps": 20, "max_sigma": 5.0, "grad_step": 0.05}])
def test_agrees_with_pair(engine, options):
    net = conv_net()
    torch.manual_seed(2)
    image = torch.rand(1, 3, SIDE, SIDE)
    ours = engine.attribute(net, image, 3, method="blur_ig", method_options=options).attributions[0].double()
    reference, terms = pair_blur_ig(net, image[0], 3, **options)
    assert torch.all((ours - reference).abs() <= TERMS_ROUNDING * terms)


def test_batched_examples_and_targets_agree_with_pair(engine):
    net = conv_net()
    torch.manual_seed(3)
    images = torch.rand(2, 3, SIDE, SIDE)
    options = {"steps": 30, "max_sigma": 10.0}
    result = engine.attribute(net, images, [4, 0], method="blur_ig", method_options=options)
    assert result.attributions.shape == (2, 2, 3, SIDE, SIDE) and result.scores.shape == (31, 2, 2)
    for n in range(2):
        for j, target in enumerate([4, 0]):
            reference, terms = pair_blur_ig(net, images[n], target, **options)
            assert torch.all((result.attributions[j, n].double() - reference).abs() <= TERMS_ROUNDING * terms)


def test_linear_model_completeness_is_the_riemann_sum_of_the_blur_path(engine):
    """F = <w, x>: the attributions add up to -sum_k dsigma_k <w, dblur_k/dsigma>, which misses F(input) -
    F(blurred input) by the Riemann and finite-difference errors; the result reports that miss as delta."""
    torch.manual_seed(4)
    w, image = torch.randn(1, 3, SIDE, SIDE), torch.rand(1, 3, SIDE, SIDE)
    options = {"steps": 25, "max_sigma": 6.0}
    result = engine.attribute(lambda z: (z * w).flatten(1).sum(1, keepdim=True), image, 0, method="blur_ig",
                              method_options=options)
    method, x, w64 = BlurIG(**options), image.double().numpy(), w.double().numpy()
    sigmas, step = method.sigmas(), method.options.grad_step
    terms = [width * (scipy_blur(x, sigma + step) - scipy_blur(x, sigma)) / step * w64
             for width, sigma in zip(np.diff(sigmas), sigmas)]
    riemann = -sum(term.sum() for term in terms)
    blurred = (scipy_blur(x, sigmas[-1]) * w64).sum()
    # the blurs round sums of 2 * SIDE terms of weights <= 1; the sums over pixels and steps are pairwise: a few
    # roundings of the sum of |terms| each
    ends = (np.abs(w64) * (np.abs(x) + scipy_blur(np.abs(x), sigmas[-1]))).sum()
    rounding = 2 * SIDE * EPS * (ends + sum(np.abs(term).sum() for term in terms))
    assert abs(result.score_baseline[0, 0] - blurred) <= rounding
    assert abs(result.delta[0, 0] - (riemann - ((x * w64).sum() - blurred))) <= rounding
    assert abs(result.delta[0, 0]) > 10 * rounding  # a Riemann sum, not exact: reported as it is


def test_trend_runs_from_the_blurred_image_to_the_image(engine):
    net = conv_net()
    image = torch.rand(1, 3, SIDE, SIDE)
    result = engine.attribute(net, image, 1, method="blur_ig", method_options={"steps": 4, "max_sigma": 8.0})
    np.testing.assert_array_equal(result.alphas, [0.0, 0.25, 0.5, 0.75, 1.0])
    assert result.scores[-1, 0, 0] == result.score_input[0, 0]
    assert result.scores[0, 0, 0] == result.score_baseline[0, 0]


def test_non_image_inputs_are_refused():
    net = torch.nn.Linear(6, 2)
    message = r"Blur IG works on images \[N, channels, height, width\]; got inputs \(3, 6\)"
    with pytest.raises(ValueError, match=message):
        AttributionEngine(device="cpu").attribute(net, torch.randn(3, 6), 0, method="blur_ig")


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="max_sigma > 0"):
        BlurIG(max_sigma=0.0)
