"""Rank agreement between attribution maps, against scipy-free exact answers."""
import numpy as np
import pytest

from ig_core.agreement import agreement, spearman, spearman_rows, top_overlap

pytestmark = pytest.mark.numeric


def test_spearman_of_monotone_maps_is_one_and_of_reversed_minus_one():
    a = np.array([0.1, 3.0, -2.0, 7.5, 0.0])
    assert spearman(a, a ** 3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_spearman_with_ties_matches_the_pearson_of_mean_ranks():
    a, b = np.array([1.0, 2.0, 2.0, 4.0]), np.array([3.0, 1.0, 2.0, 4.0])
    ranks_a, ranks_b = np.array([1, 2.5, 2.5, 4]), np.array([3, 1, 2, 4.0])  # worked by hand
    assert spearman(a, b) == pytest.approx(np.corrcoef(ranks_a, ranks_b)[0, 1])


def test_spearman_rows_ranks_each_row_on_its_own_ties_included():
    a = np.array([[1.0, 2.0, 2.0, 4.0], [5.0, 5.0, 5.0, 5.0], [0.3, -1.0, 2.0, 0.3], [1.0, 2.0, 3.0, 4.0]])
    b = np.array([[3.0, 1.0, 2.0, 4.0], [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 1.0, 0.0], [4.0, 3.0, 2.0, 1.0]])
    by_hand = [  # mean ranks of ties, worked by hand, then their Pearson correlation
        np.corrcoef([1, 2.5, 2.5, 4], [3, 1, 2, 4])[0, 1], np.nan,
        np.corrcoef([2.5, 1, 4, 2.5], [3.5, 3.5, 2, 1])[0, 1], -1.0]
    np.testing.assert_allclose(spearman_rows(a, b), by_hand, rtol=1e-12)
    assert [spearman(x, y) for x, y in zip(a[[0, 2, 3]], b[[0, 2, 3]])] == list(spearman_rows(a, b)[[0, 2, 3]])


def test_top_overlap_counts_shared_top_features():
    a = np.array([9, 8, 7, 0, 0, 0.0])
    b = np.array([9, 0, 0, 8, 7, 0.0])
    assert top_overlap(a, b, 3) == pytest.approx(1 / 3)
    assert top_overlap(a, -a, 3) == 1.0  # by |score|


def test_agreement_reports_all_figures_and_refuses_maps_of_different_sizes():
    rng = np.random.default_rng(0)
    a = rng.normal(size=100)
    result = agreement(a, a + 1e-3 * rng.normal(size=100))
    assert result["top"] == 10 and result["top_overlap"] >= 0.8 and result["spearman"] > 0.99
    assert np.isnan(spearman(np.ones(5), a[:5]))
    with pytest.raises(ValueError, match="features"):
        spearman(a, a[:50])
