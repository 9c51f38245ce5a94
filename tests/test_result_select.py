"""ig_core.Attribution.select: some examples and targets of one scan are those of a scan of them alone."""
import numpy as np
import torch

from ig_core import AttributionEngine

# the same float32 products over batches of other sizes: a few roundings of 2**-24 each, relative to the terms
RTOL = 1e-5


def test_one_example_and_two_targets_of_a_scan_are_a_scan_of_them_alone():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    inputs = torch.randn(4, 5)
    engine = AttributionEngine("cpu", cache_size=0)
    whole = engine.attribute(model, inputs, [[0, 1, 2]] * 4, None, 8, "gauss-legendre", output="softmax",
                             probe_alphas=(0.5,))
    alone = engine.attribute(model, inputs[2:3], [[0, 2]], None, 8, "gauss-legendre", output="softmax",
                             probe_alphas=(0.5,))
    chosen = whole.select(examples=2, targets=[0, 2])
    for name in ("scores", "path_derivative", "score_input", "score_baseline", "delta", "targets"):
        assert getattr(chosen, name).shape == getattr(alone, name).shape, name
        # F is a probability: its rounding is float32's near 1, so delta (a difference of such terms) gets an atol
        np.testing.assert_allclose(getattr(chosen, name), getattr(alone, name), rtol=RTOL, atol=1e-6)
    assert chosen.relative_delta.shape == chosen.nothing_to_attribute.shape == (1, 2)
    for kept in (chosen.attributions_per_target[0], chosen.interior_gradients[0.5][0]):
        assert kept.shape == (2, 1, 5)
    torch.testing.assert_close(chosen.attributions_per_target[0], alone.attributions_per_target[0], rtol=RTOL,
                               atol=1e-6)
    assert whole.select(targets=1).score_input.shape == (4, 1)  # every example, one target
