"""XRAI: the greedy region ranking on a hand-made case, and the whole method against PAIR's `saliency` XRAI."""
import numpy as np
import pytest
import torch
from saliency.core import XRAI as PairXRAI
from saliency.core import XRAIParameters

from ig_core import AttributionEngine
from ig_core.methods.xrai import rank_regions

EPS = float(np.finfo(np.float32).eps)
pytestmark = pytest.mark.numeric

# a 1 x 6 image and four candidate regions, each given by its pixels
ATTRIBUTION = np.array([[9.0, 9.0, 0.0, 7.0, 1.0, -3.0]])
REGIONS = [{2, 3}, {0, 1, 2}, {3, 4}, {4, 5}]
MASKS = np.array([[[p in region for p in range(6)]] for region in REGIONS])


@pytest.mark.parametrize("options, density, ranks", [
    # {0,1,2} (6) first; then {2,3} adds only pixel 3 (7), denser than its whole (3.5) and than the first region
    ({}, [6, 6, 6, 7, 1, -3], [2, 2, 2, 1, 3, 4]),
    # {2,3} would add one pixel only and is dropped; {3,4} adds both (4); {4,5} would add one: pixel 5 is left over
    ({"min_region_pixels": 2}, [6, 6, 6, 4, 4, -3], [1, 1, 1, 2, 2, 3]),
    # half the image covered still continues, two thirds stops: pixels 4 and 5 are left over with their mean
    ({"area_threshold": 0.5}, [6, 6, 6, 7, -1, -1], [2, 2, 2, 1, 3, 3]),
])
def test_regions_are_ranked_by_the_density_of_the_pixels_they_add(options, density, ranks):
    options = {"min_region_pixels": 1, **options}
    got_density, got_ranks = rank_regions(ATTRIBUTION, MASKS, **options)
    np.testing.assert_array_equal(got_density, [density])  # means of a few small integers: exact
    np.testing.assert_array_equal(got_ranks, [ranks])


def squares_image(size=32, seed=0):
    """Coloured squares on a grey background with a little noise: segments worth finding. [1, 3, H, W] in [0, 1]."""
    image = torch.full((3, size, size), 0.5)
    for (top, left, side), colour in zip([(2, 3, 12), (18, 4, 10), (6, 19, 11), (20, 18, 9)],
                                         [(0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.2, 0.2, 0.9), (0.9, 0.9, 0.1)]):
        image[:, top:top + side, left:left + side] = torch.tensor(colour)[:, None, None]
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(seed)) * 0.05
    return (image + noise).clamp(0, 1).unsqueeze(0)


class Quadratic(torch.nn.Module):
    """F_k(x) = sum(w_k * x + v_k * x^2): its gradient is elementwise, the same whichever examples share a batch,
    so XRAI's two-baseline scan and two single scans differ at most in how the quadrature's sums are grouped."""

    def __init__(self, shape, classes=3, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(classes, *shape, generator=generator))
        self.v = torch.nn.Parameter(torch.randn(classes, *shape, generator=generator))

    def forward(self, x):
        return (x.unsqueeze(1) * self.w + x.unsqueeze(1) ** 2 * self.v).flatten(2).sum(-1)


def no_model(*args, **kwargs):
    raise AssertionError("PAIR's XRAI was given its base attribution and needs no model")


@pytest.mark.parametrize("second_baseline, area_threshold", [(1.0, 1.0), (None, 0.3), ((0.9, 0.8, 1.0), 1.0)])
def test_map_and_ranks_equal_pairs_given_the_same_integrated_gradients(second_baseline, area_threshold):
    engine = AttributionEngine(device="cpu", max_batch=64)
    x = squares_image()
    net = Quadratic(x.shape[1:])
    options = {"second_baseline": second_baseline, "area_threshold": area_threshold}
    result = engine.attribute(net, x, 1, steps=8, method="xrai", method_options=options)

    second = [] if second_baseline is None else [torch.tensor(second_baseline).view(-1, 1, 1).expand_as(x)]
    baselines = [torch.zeros_like(x)] + second
    scans = [engine.attribute(net, x, 1, baseline=b, steps=8) for b in baselines]
    base = np.mean([s.attributions[0].numpy().transpose(1, 2, 0) for s in scans], axis=0)
    image = x[0].numpy().transpose(1, 2, 0)
    parameters = XRAIParameters(area_threshold=area_threshold, return_xrai_segments=True)
    pair = PairXRAI().GetMaskWithDetails(image, no_model, base_attribution=base, extra_parameters=parameters)

    ours = result.attributions[0].numpy()  # [3, H, W]: the map in channel 0, shifted so its least dense region is 0
    assert np.all(ours[1:] == 0) and ours[0].min() == 0
    # PAIR's densities are float32 means (pairwise sums: about log2(1024) = 10 roundings of the largest
    # |attribution|), for each value and for the minimum subtracted; ours round once to float32
    tolerance = 32 * EPS * np.abs(base).max()
    np.testing.assert_allclose(ours[0], pair.attribution_mask - pair.attribution_mask.min(), rtol=0, atol=tolerance)
    np.testing.assert_allclose(result.extras["lowest_density"][0][0, 0], pair.attribution_mask.min(), rtol=0,
                               atol=tolerance)
    np.testing.assert_array_equal(result.extras["regions"][0][0, 0], pair.segments)
    assert len(np.unique(pair.segments)) > 3  # the squares gave several regions
    # the scores, the trend and the gradient at the input are those of the scan from the request's baseline
    np.testing.assert_array_equal(result.alphas, scans[0].alphas)
    torch.testing.assert_close(result.gradient_at_input, scans[0].gradient_at_input, rtol=0, atol=0)  # elementwise
    # the same float32 sums of 3072 terms |w x + v x^2| <= |w| + |v|, perhaps in other batches: their rounding
    scale = (net.w.abs().sum() + net.v.abs().sum()).item()
    np.testing.assert_allclose(result.scores, scans[0].scores, rtol=0, atol=16 * EPS * scale)
    np.testing.assert_allclose(result.score_baseline, scans[0].score_baseline, rtol=0, atol=16 * EPS * scale)


def test_non_images_and_second_baselines_of_other_channels_are_refused():
    engine = AttributionEngine(device="cpu")
    with pytest.raises(ValueError, match=r"images \[N, channels, height, width\]"):
        engine.attribute(torch.nn.Linear(5, 2), torch.rand(2, 5), 0, method="xrai")
    x = squares_image(size=16)
    with pytest.raises(ValueError, match="2 values, one per channel, but the images have 3 channels"):
        engine.attribute(Quadratic(x.shape[1:]), x, 0, method="xrai", method_options={"second_baseline": (1.0, 0.5)})


def test_completeness_is_not_defined():
    x = squares_image(size=16)
    result = AttributionEngine(device="cpu").attribute(Quadratic(x.shape[1:]), x, 0, steps=4, method="xrai")
    assert result.completeness is None and not result.completeness_defined
    assert "defines no completeness" in result.summary()
    assert np.all(np.isnan(result.delta))


def test_the_region_maps_count_in_the_cached_results_size():
    from ig_core.result import Attribution

    result = Attribution.__new__(Attribution)
    result.__dict__.update(attributions_per_target=(torch.zeros(1, 1, 3, 4, 4),), interior_gradients={},
                           extras={"regions": (torch.zeros(1, 1, 4, 4, dtype=torch.int32),), "lowest_density": (0.5,)})
    assert result.nbytes() == 4 * 48 + 4 * 16


def test_the_points_evaluated_count_both_baselines_scans_and_the_steps_stay_per_scan():
    x = squares_image(size=16)
    engine = AttributionEngine(device="cpu")
    one = engine.attribute(Quadratic(x.shape[1:]), x, 0, steps=4, rule="trapezoid", method="xrai",
                           method_options={"second_baseline": None})
    two = engine.attribute(Quadratic(x.shape[1:]), x, 0, steps=4, rule="trapezoid", method="xrai")
    assert two.points_evaluated == 2 * one.points_evaluated and two.steps_used == one.steps_used
