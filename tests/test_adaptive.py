"""ig_core.path.adaptive: each example of a batch refined on its own grid, stopping at its own tolerance."""
import numpy as np
import pytest
import torch

from families.molecules.featurize import Featurizer
from families.molecules.weave import WeaveModel
from ig_core import METHODS, AttributionEngine
from ig_core.inputs import AttributionProblem
from ig_core.methods.base import MethodContext
from ig_core.methods.integrated_gradients import scan_path
from ig_core.path.options import PathOptions

pytestmark = pytest.mark.numeric
EPS = float(np.finfo(np.float32).eps)


def saturating(z: torch.Tensor) -> torch.Tensor:
    """F(x) = 1 - exp(-x_0 - x_1): a steep example bends near the baseline, a flat one is almost linear. Its
    interval errors fall monotonically along the path, so no two intervals tie and the grid is one answer."""
    return (1 - torch.exp(-z.sum(1))).unsqueeze(1)


def test_each_example_stops_at_its_own_tolerance_on_the_grid_it_takes_alone():
    x = torch.tensor([[20.0, 10.0], [0.05, 0.02], [4.0, 1.0]])
    engine = AttributionEngine(device="cpu", max_batch=256, cache_size=0)
    together = engine.attribute(saturating, x, 0, steps=4, rule="adaptive", tolerance=1e-3, max_steps=1024)
    assert together.evaluated is not None and together.evaluated.shape == (len(together.alphas), 3)
    points = []
    for n in range(3):
        alone = engine.attribute(saturating, x[n:n + 1], 0, steps=4, rule="adaptive", tolerance=1e-3,
                                 max_steps=1024)
        mine = together.select(examples=n)
        assert alone.max_relative_delta <= 1e-3 and mine.max_relative_delta <= 1e-3
        # its own grid, not the union of the batch's (the same scan: exact)
        assert set(mine.alphas) < set(together.alphas) or n == 0
        assert mine.points_evaluated == len(mine.alphas) == mine.steps_used
        # another batch shape rounds the interval errors another way, which can break a near tie between two
        # intervals the other way and move a bisection: about the points it takes alone, not the batch's
        assert abs(mine.points_evaluated - alone.points_evaluated) <= 2 + alone.points_evaluated // 10
        assert not np.isnan(mine.scores).any() and (mine.weights[:, 0] > 0).all()  # trapezoid weights, no probes
        # both features see one gradient exp(-alpha sum(x)), so a_i = x_i * I with x_0 I + x_1 I = F(x) - F(0) + delta:
        # a_i = x_i (F(x) - F(0) + delta) / sum(x) on any grid. Two grids' maps then differ by x_i / sum(x) times
        # their deltas and their F's float32 roundings (two per end, another batch shape rounding exp its own way),
        # plus the products' roundings (a few eps of a_i)
        f_rounding = 4 * EPS * (abs(float(alone.score_input[0, 0])) + abs(float(alone.score_baseline[0, 0])))
        share = x[n].double() / x[n].double().sum()
        a_alone, a_mine = alone.attributions[0].double(), mine.attributions[0].double()
        bound = share * (abs(float(alone.delta[0, 0])) + abs(float(mine.delta[0, 0])) + f_rounding)
        assert torch.all((a_mine - a_alone).abs() <= bound + 4 * EPS * a_alone.abs())
        points.append(mine.points_evaluated)
    assert points[1] < points[2] < points[0]  # the flat example stopped first, the steep one last
    assert together.points_evaluated == max(points)
    assert np.isnan(together.scores[:, :, 0][~together.evaluated]).all()  # where an example was not evaluated


def test_noisy_copies_share_one_grid_since_their_trends_are_averaged():
    x = torch.tensor([[20.0, 10.0], [0.05, 0.02]])
    engine = AttributionEngine(device="cpu", max_batch=256, cache_size=0)
    result = engine.attribute(saturating, x, 0, steps=4, rule="adaptive", tolerance=1e-3, method="smoothgrad",
                              method_options={"base": "integrated_gradients", "samples": 3, "noise": 0.01})
    assert not np.isnan(result.scores).any()
    context = MethodContext(AttributionProblem(saturating, (x,), (torch.zeros_like(x),),
                                               torch.zeros((2, 1), dtype=torch.long)),
                            PathOptions(4, "adaptive", 1e-3, 1024, (), False), max_batch=256)
    shared = scan_path(context.on(context.problem))
    assert shared.evaluated is None and shared.max_relative_delta <= 1e-3  # the worst example decides
    assert METHODS["smoothgrad"].stackable is False


def test_molecules_of_a_packed_batch_refine_on_their_own_graphs():
    """A packed graph binds each batch row to its molecule: evaluating some molecules alone needs their own graph
    (BoundWeave.for_examples), or each would be scored on another's bonds."""
    torch.manual_seed(0)
    featurizer = Featurizer()
    model = WeaveModel(featurizer.n_atom_features, featurizer.n_pair_features, n_tasks=2).eval()
    molecules = [featurizer.from_smiles(smiles) for smiles in ("CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O")]
    bound = model.bind(molecules, output="probability")
    engine = AttributionEngine(device="cpu", max_batch=256, cache_size=0)
    together = engine.attribute(bound, bound.inputs, torch.tensor([[0], [1], [0]]), steps=4, rule="adaptive",
                                tolerance=1e-3)
    for n, molecule in enumerate(molecules):
        alone_forward = model.bind(molecule, output="probability")
        alone = engine.attribute(alone_forward, alone_forward.inputs, [[0], [1], [0]][n][0], steps=4,
                                 rule="adaptive", tolerance=1e-3)
        mine = together.select(examples=n)
        assert mine.max_relative_delta <= 1e-3
        np.testing.assert_allclose(mine.score_input, alone.score_input, rtol=1e-5)
        # at the alphas refined for this molecule alone and in the batch, F and its path derivative are this
        # molecule's: on another's graph they would be another function's (float32 sums over padded atoms aside)
        start = set(np.linspace(0, 1, 4))
        refined = [a for a in set(mine.alphas) & set(alone.alphas) if a not in start]
        assert refined
        for name in ("scores", "path_derivative"):
            ours = dict(zip(mine.alphas, getattr(mine, name)[:, 0, 0]))
            theirs = dict(zip(alone.alphas, getattr(alone, name)[:, 0, 0]))
            np.testing.assert_allclose([ours[a] for a in refined], [theirs[a] for a in refined], rtol=1e-4, atol=1e-9)
