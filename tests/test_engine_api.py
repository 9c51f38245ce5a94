"""ig_core as a library on its own, against Captum where Captum has the feature: inputs without a feature dimension,
target=None, forward args, layer and neuron integrated gradients, float64 models, the forms of targets and
baselines, multiply_by_inputs=False and the completeness delta of attributions computed elsewhere.

Agreement with Captum is measured against what the quadrature sums: two float32 implementations of one rule round a
sum of `steps` terms w_k * g_k * (x - b) differently, by at most steps * eps of the sum of their magnitudes.
"""
import copy
import threading

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients, NeuronIntegratedGradients
from captum.testing.helpers.basic_models import (
    BasicModel,
    BasicModel2,
    BasicModel4_MultiArgs,
    BasicModel5_MultiArgs,
    BasicModel_MultiLayer,
    BasicModelWithReusedModules,
)

from ig_core import AttributionEngine, completeness_delta, layer_integrated_gradients, neuron_integrated_gradients

EPS = torch.finfo(torch.float32).eps
EPS64 = torch.finfo(torch.float64).eps
STEPS = 24
pytestmark = pytest.mark.numeric


@pytest.fixture
def engine():
    return AttributionEngine(device="cpu", max_batch=256)


def relu_net(inputs=5, classes=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, 8), torch.nn.ReLU(), torch.nn.Linear(8, classes))


def quadrature_terms(result, differences):
    """Per attribution, |x - b| * sum_k w_k |g(alpha_k)|: the magnitude of the sum the quadrature rounds (the result
    must have kept all gradients). differences: x - b per input."""
    weights = dict(zip(result.alphas, result.weights[:, 0]))  # one example
    kept = {a: g if isinstance(g, tuple) else (g,) for a, g in
            ((a, result.interior_gradient(a)) for a in result.alphas)}
    return tuple(d.abs() * sum(weights[a] * g[i].abs() for a, g in kept.items())
                 for i, d in enumerate(differences))


def assert_agree(ours, theirs, terms, steps=STEPS, eps=EPS):
    """ours and theirs within steps * eps of the magnitude of the terms each sums (a tensor or tuples of them)."""
    ours, theirs, terms = (v if isinstance(v, tuple) else (v,) for v in (ours, theirs, terms))
    for a, b, t in zip(ours, theirs, terms):
        assert a.shape == b.shape and a.dtype == b.dtype
        difference = (a - b).abs()
        assert torch.all(difference <= steps * eps * t), float((difference - steps * eps * t).max())


def gauss_legendre(engine, forward, inputs, target, **options):
    return engine.attribute(forward, inputs, target, steps=STEPS, rule="gauss-legendre", keep_all_gradients=True,
                            **options)


def captum_ig(forward, inputs, **options):
    return IntegratedGradients(forward).attribute(inputs, n_steps=STEPS, method="gausslegendre", **options)


# --- inputs [N] and target=None ------------------------------------------------------------------

def test_inputs_without_a_feature_dimension_and_one_output_match_captum(engine):
    model = BasicModel()  # min(x, 1) elementwise: [N] in, [N] out
    x = torch.tensor([0.5, 1.5, -0.3, 3.0, 0.9])
    ours = gauss_legendre(engine, model, x, None)
    assert ours.attributions.shape == x.shape
    assert_agree(ours.attributions, captum_ig(model, x), quadrature_terms(ours, (x,)))
    # below the kink the path is linear: all of F(x) - F(0) = x is attributed (STEPS float32 weights sum to 1
    # within STEPS * eps)
    below = x < 1
    torch.testing.assert_close(ours.attributions[below], x[below], rtol=STEPS * EPS, atol=0)


def test_target_none_for_a_forward_returning_n_by_1(engine):
    net = relu_net(classes=1)
    x = torch.randn(3, 5)
    none = engine.attribute(net, x, None, steps=8)
    zero = engine.attribute(net, x, 0, steps=8)
    assert torch.equal(none.attributions, zero.attributions) and none.attributions.shape == x.shape


def test_target_none_is_refused_for_a_forward_with_several_outputs(engine):
    net, x = relu_net(classes=3), torch.randn(2, 5)
    engine.attribute(net, x, 0, steps=8)  # a cached result for target 0 must not answer target=None
    with pytest.raises(ValueError, match=r"target=None needs a forward with one output per example.*returns 3"):
        engine.attribute(net, x, None, steps=8)


# --- forward args ---------------------------------------------------------------------------------

def test_forward_args_match_captums_additional_forward_args(engine):
    torch.manual_seed(1)
    x1, x2 = torch.randn(4, 3) + 1, torch.randn(4, 3)
    divisor = torch.rand(4, 3) + 0.5  # per example: follows its example through the batches
    model4 = BasicModel4_MultiArgs()  # relu(relu(x1 - 1) - relu(x2) / divisor)[:, column]
    ours = gauss_legendre(engine, model4, (x1, x2), None, forward_args=(divisor, 1))
    assert_agree(ours.attributions, captum_ig(model4, (x1, x2), additional_forward_args=(divisor, 1)),
                 quadrature_terms(ours, (x1, x2)))
    model5 = BasicModel5_MultiArgs()  # relu(3 relu(x1 - 1) - 10 relu(x2))[:, column]: a list and an int as they are
    x1, x2 = x1 + 1, x2 / 10  # most outputs above zero
    ours = gauss_legendre(engine, model5, (x1, x2), None, forward_args=([3, 10], 2))
    assert ours.attributions[0].abs().sum() > 0  # a comparison of zeros would tell nothing
    assert_agree(ours.attributions, captum_ig(model5, (x1, x2), additional_forward_args=([3, 10], 2)),
                 quadrature_terms(ours, (x1, x2)))


def test_one_forward_arg_need_not_be_a_tuple_and_per_example_rows_survive_any_batching():
    net = relu_net()
    forward = lambda z, shift: net(z + shift)
    x, shift = torch.randn(3, 5), torch.randn(3, 5)
    whole = AttributionEngine(device="cpu", max_batch=1000).attribute(forward, x, 1, steps=16, forward_args=shift,
                                                                      keep_all_gradients=True)
    terms = quadrature_terms(whole, (x,))[0]  # other batch shapes round the same sums differently
    chunked = AttributionEngine(device="cpu", max_batch=5).attribute(forward, x, 1, steps=16, forward_args=(shift,))
    assert_agree(chunked.attributions, whole.attributions, terms, steps=16)
    for n in range(3):  # each example with its own row: the same as alone
        alone = AttributionEngine(device="cpu").attribute(forward, x[n:n + 1], 1, steps=16,
                                                          forward_args=shift[n:n + 1])
        assert_agree(alone.attributions, whole.attributions[n:n + 1], terms[n:n + 1], steps=16)


def test_forward_args_are_part_of_the_cache_key(engine):
    net = relu_net()
    forward = lambda z, shift, scale: net(z * scale + shift)
    x, shift = torch.randn(2, 5), torch.randn(2, 5)
    first = engine.attribute(forward, x, 0, steps=8, forward_args=(shift, 2.0))
    assert engine.attribute(forward, x, 0, steps=8, forward_args=(shift.clone(), 2.0)) is first
    assert engine.attribute(forward, x, 0, steps=8, forward_args=(shift + 1, 2.0)) is not first
    assert engine.attribute(forward, x, 0, steps=8, forward_args=(shift, 3.0)) is not first
    # an object whose repr need not tell its contents turns the cache off for the call, and still works
    module = torch.nn.Identity()
    module_forward = lambda z, shift, module: net(module(z) + shift)
    once = engine.attribute(module_forward, x, 0, steps=8, forward_args=(shift, module))
    again = engine.attribute(module_forward, x, 0, steps=8, forward_args=(shift, module))
    assert again is not once and torch.equal(again.attributions, once.attributions)


# --- layer and neuron integrated gradients --------------------------------------------------------

def output_size(model, x):
    """BasicModel_MultiLayer's output sums with every weight, bias and input replaced by its magnitude."""
    size = x.abs()
    for layer in (model.linear0, model.linear1, model.linear2):
        size = size @ layer.weight.abs().T + layer.bias.abs()
    return size


@pytest.mark.parametrize("to_input", [False, True])
@pytest.mark.parametrize("layer_name", ["linear1", "relu"])
def test_layer_integrated_gradients_match_captum(engine, layer_name, to_input):
    model = BasicModel_MultiLayer()
    layer = getattr(model, layer_name)
    torch.manual_seed(2)
    x, baseline = torch.randn(4, 3) * 3, torch.randn(1, 3)
    ours = layer_integrated_gradients(engine, model, layer, x, 1, baseline, attribute_to_layer_input=to_input,
                                      steps=STEPS, rule="gauss-legendre", keep_all_gradients=True)
    theirs, captum_delta = LayerIntegratedGradients(model, layer).attribute(
        x, baseline, target=1, n_steps=STEPS, method="gausslegendre", attribute_to_layer_input=to_input,
        return_convergence_delta=True)
    activations = []
    hook = layer.register_forward_hook(lambda _m, i, o: activations.append(i[0] if to_input else o))
    with torch.no_grad():
        model(x)
        model(baseline.expand_as(x))
    hook.remove()
    at_input, at_baseline = activations
    terms = quadrature_terms(ours, (at_input - at_baseline,))
    assert_agree(ours.attributions, theirs, terms)
    # the layer's activations determine the output here: the scan's ends are the model's own scores, up to the
    # rounding of its three layers of sums in another batch shape (each |error| <= eps * size, in both)
    with torch.no_grad():
        for scores, z in ((ours.score_input, x), (ours.score_baseline, baseline.expand_as(x))):
            np.testing.assert_allclose(scores[:, 0], model(z)[:, 1].double(), rtol=0,
                                       atol=6 * EPS * float(output_size(model, z).max()))
    # completeness within the same quadrature error as Captum's: the sums differ by the rounding of the terms
    # and of the two scores
    with torch.no_grad():
        score_size = output_size(model, x) + output_size(model, baseline)
    np.testing.assert_allclose(ours.delta[:, 0], captum_delta.double(), rtol=0,
                               atol=STEPS * EPS * float(terms[0].sum(1).max() + score_size.max()))
    assert not layer._forward_hooks and not layer._forward_pre_hooks


@pytest.mark.parametrize("to_input", [False, True])
def test_an_in_place_relu_after_the_layer_leaves_the_path_points_alone(engine, to_input):
    """Captum 0.9 raises here ("a leaf Variable that requires grad is being used in an in-place operation")."""
    x = torch.randn(3, 3) * 3
    results = [layer_integrated_gradients(engine, model, model.linear1, x, 1, attribute_to_layer_input=to_input,
                                          steps=8).attributions
               for model in (BasicModel_MultiLayer(), BasicModel_MultiLayer(inplace=True))]
    assert torch.equal(*results)


def test_layer_integrated_gradients_of_an_embedding_take_token_ids(engine):
    torch.manual_seed(3)
    embedding = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 2)
    model = lambda tokens: head(torch.tanh(embedding(tokens)).mean(1))
    tokens, padding = torch.tensor([[1, 5, 7], [2, 2, 9]]), torch.zeros(2, 3, dtype=torch.long)
    ours = layer_integrated_gradients(engine, model, embedding, tokens, 0, padding, steps=STEPS,
                                      rule="gauss-legendre", keep_all_gradients=True)
    theirs = LayerIntegratedGradients(model, embedding).attribute(tokens, padding, target=0, n_steps=STEPS,
                                                                  method="gausslegendre")
    assert ours.attributions.shape == (2, 3, 4)
    with torch.no_grad():
        assert_agree(ours.attributions, theirs, quadrature_terms(ours, (embedding(tokens) - embedding(padding),)))
    # tanh is smooth: Gauss-Legendre's 24 nodes leave a quadrature error far below float32 rounding of F
    assert np.all(np.abs(ours.delta) <= STEPS * EPS * np.abs(ours.score_input).max())


@pytest.mark.parametrize("layer_name,neuron,to_input", [("linear1", 2, False), ("linear2", 3, True),
                                                         ("relu", 1, False)])
def test_neuron_integrated_gradients_match_captum(engine, layer_name, neuron, to_input):
    model = BasicModel_MultiLayer()
    layer = getattr(model, layer_name)
    torch.manual_seed(4)
    x = torch.randn(3, 3) * 3
    ours = neuron_integrated_gradients(engine, model, layer, neuron, x, attribute_to_neuron_input=to_input,
                                       steps=STEPS, rule="gauss-legendre", keep_all_gradients=True)
    theirs = NeuronIntegratedGradients(model, layer).attribute(x, neuron, n_steps=STEPS, method="gausslegendre",
                                                               attribute_to_neuron_input=to_input)
    terms = quadrature_terms(ours, (x,))
    assert_agree(ours.attributions, theirs, terms)
    if layer_name == "linear1":  # the neuron is linear in the input (linear0 is the identity): complete up to
        # float32 rounding of its sums, eps of their size per layer in each computation
        with torch.no_grad():
            neuron_value = (x @ model.linear1.weight.T + model.linear1.bias)[:, neuron].double()
            size = (x.abs() @ model.linear1.weight.abs().T + model.linear1.bias.abs())[:, neuron].double().numpy()
        np.testing.assert_allclose(ours.score_input[:, 0], neuron_value, rtol=0, atol=4 * EPS * size.max())
        assert np.all(np.abs(ours.delta[:, 0]) <= STEPS * EPS * (terms[0].sum(1).numpy() + size))


def test_layer_hooks_act_on_the_calling_thread_only_and_are_always_removed(engine):
    model = BasicModel_MultiLayer()
    x, other_input = torch.randn(2, 3), torch.randn(2, 3)
    with torch.no_grad():
        expected = model(other_input)
    seen = []

    def forward(z):  # while the hooks are in place, another thread runs the same model
        worker = threading.Thread(target=lambda: seen.append(model(other_input).detach()))
        worker.start()
        worker.join()
        return model(z)

    layer_integrated_gradients(engine, forward, model.linear1, x, 0, steps=4)
    # two forward passes read the activations (had they counted the other thread's, the layer would have run
    # twice), one batch of 6 path points replaced them: the other thread got the model's own output each time
    assert len(seen) == 3 and all(torch.equal(other, expected) for other in seen)
    assert not model.linear1._forward_hooks

    def failing_in_the_scan(z):  # the scan's forward passes take gradients, the activations' do not
        out = model(z)
        if torch.is_grad_enabled():
            raise RuntimeError("model failed")
        return out

    with pytest.raises(RuntimeError, match="model failed"):
        layer_integrated_gradients(engine, failing_in_the_scan, model.linear1, x, 0, steps=4)

    def failing_before_the_layer(z):
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        neuron_integrated_gradients(engine, failing_before_the_layer, model.linear2, 0, x, steps=4)
    assert not model.linear1._forward_hooks and not model.linear2._forward_hooks


def test_a_layer_that_runs_twice_is_refused(engine):
    model = BasicModelWithReusedModules()
    with pytest.raises(ValueError, match="ran 2 times"):
        layer_integrated_gradients(engine, model, model.relu, torch.randn(2, 3), 0, steps=4)


# --- float64 --------------------------------------------------------------------------------------

def test_a_float64_model_is_scanned_in_float64(engine):
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    x = torch.randn(3, 5, dtype=torch.float64)
    ours = gauss_legendre(engine, net, x, 1)
    assert ours.attributions.dtype == torch.float64
    terms = quadrature_terms(ours, (x,))[0]
    # a sum of STEPS terms and two scores, rounded in float64 (Gauss-Legendre's error on tanh is far below that)
    scale = terms.sum(1).numpy() + np.abs(ours.score_input[:, 0]) + np.abs(ours.score_baseline[:, 0])
    bound = STEPS * EPS64 * scale
    assert np.all(np.abs(ours.delta[:, 0]) <= bound)
    single = engine.attribute(copy.deepcopy(net).float(), x.float(), 1, steps=STEPS, rule="gauss-legendre")
    assert np.any(np.abs(single.delta[:, 0]) > bound)  # the bound tells float64 from float32
    # Captum scans in float64 too but rounds its step sizes to float32: each term is off by eps(float32) of itself
    assert_agree(ours.attributions, captum_ig(net, x, target=1), terms, steps=1)


def test_half_precision_inputs_are_scanned_in_float32(engine):
    net = relu_net()
    x = torch.randn(2, 5).half()
    half = engine.attribute(net, x, 0, steps=8)
    assert half.attributions.dtype == torch.float32
    assert torch.equal(half.attributions, engine.attribute(net, x.float(), 0, steps=8).attributions)


# --- targets --------------------------------------------------------------------------------------

def test_per_example_targets_in_every_form_agree_with_captum(engine):
    net, x = relu_net(), torch.randn(3, 5)
    per_example = engine.attribute(net, x, torch.tensor([2, 0, 1]), steps=STEPS, rule="gauss-legendre",
                                   keep_all_gradients=True)
    assert_agree(per_example.attributions, captum_ig(net, x, target=[2, 0, 1]), quadrature_terms(per_example, (x,)))
    as_lists = engine.attribute(net, x, [[2], [0], [1]], steps=STEPS, rule="gauss-legendre")
    assert torch.equal(as_lists.attributions[0], per_example.attributions)  # [N, T] form: a target dimension
    pairs = torch.tensor([[2, 0], [0, 1], [1, 1]])
    from_tensor = engine.attribute(net, x, pairs, steps=8)
    from_lists = engine.attribute(net, x, pairs.tolist(), steps=8)
    assert torch.equal(from_tensor.attributions, from_lists.attributions) and from_lists.attributions.shape == (2, 3, 5)


def test_a_list_of_ints_is_several_targets_for_every_example(engine):
    net, x = relu_net(), torch.randn(3, 5)
    several = engine.attribute(net, x, [2, 0, 1], steps=8)
    assert several.attributions.shape == (3, 3, 5)
    for j, t in enumerate([2, 0, 1]):
        alone = engine.attribute(net, x, t, steps=8, keep_all_gradients=True)
        # the same gradients, weighed by a product of another shape (3 targets' columns): two roundings of x * (a sum
        # of K = len(alphas) terms w_k g_k) differ by at most (K + 1) eps of x * sum_k w_k |g_k|
        assert_agree(several.attributions[j], alone.attributions, quadrature_terms(alone, (x,)),
                     steps=len(alone.alphas) + 1)


@pytest.mark.parametrize("form", [torch.tensor(2), torch.tensor([2]), np.array([2]), np.int64(2)])
def test_one_target_for_all_examples_in_any_form_equals_the_int(engine, form):
    net, x = relu_net(), torch.randn(3, 5)
    assert torch.equal(engine.attribute(net, x, form, steps=8).attributions,
                       engine.attribute(net, x, 2, steps=8).attributions)


@pytest.mark.parametrize("target,message", [([[0, 1], [1]], "list of 3 lists"), ([0, [1]], "list of 3 lists"),
                                            (torch.tensor([0.0, 1.0, 1.0]), "integers"),
                                            (torch.tensor([0, 1]), r"shape \[3\]")])
def test_ambiguous_targets_are_refused(engine, target, message):
    with pytest.raises(ValueError, match=message):
        engine.attribute(relu_net(), torch.randn(3, 5), target, steps=4)


# --- baselines ------------------------------------------------------------------------------------

def test_a_number_inside_a_tuple_of_baselines_matches_captum(engine):
    model = BasicModel2()  # relu(relu(x1) - 1 - relu(x2)), [N] inputs
    x1, x2 = torch.tensor([3.0, 2.5, 4.0]), torch.tensor([1.0, -0.5, 0.2])
    b2 = torch.tensor([0.5, -1.0, 0.1])
    ours = gauss_legendre(engine, model, (x1, x2), None, baseline=(0.0, b2))
    theirs = captum_ig(model, (x1, x2), baselines=(0.0, b2))
    assert_agree(ours.attributions, theirs, quadrature_terms(ours, (x1, x2 - b2)))


def test_a_baseline_of_one_row_serves_every_example(engine):
    net = relu_net()
    forward = lambda a, b: net(torch.cat([a, b], 1))
    x = (torch.randn(3, 2), torch.randn(3, 3))
    one_row = (torch.randn(1, 2), 0.5)
    broadcast = gauss_legendre(engine, forward, x, 0, baseline=one_row)
    expanded = gauss_legendre(engine, forward, x, 0, baseline=(one_row[0].expand(3, 2), torch.full((3, 3), 0.5)))
    for a, b in zip(broadcast.attributions, expanded.attributions):
        assert torch.equal(a, b)
    theirs = captum_ig(forward, x, target=0, baselines=one_row)
    assert_agree(broadcast.attributions, theirs, quadrature_terms(broadcast, (x[0] - one_row[0], x[1] - 0.5)))


def test_wrong_baselines_are_refused_naming_the_input_and_both_shapes(engine):
    forward = lambda a, b: torch.cat([a, b], 1)
    x = (torch.randn(3, 2), torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"baseline 1 of shape \(2, 4\) does not fit input 1 of shape \(3, 4\)"):
        engine.attribute(forward, x, 0, baseline=(0.0, torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="2 inputs but 3 baselines"):
        engine.attribute(forward, x, 0, baseline=(0.0, 0.0, 0.0))


# --- multiply_by_inputs=False and completeness_delta ----------------------------------------------

def test_the_path_averaged_gradient_matches_captums_global_attribution(engine):
    net, x = relu_net(), torch.randn(3, 5)
    ours = gauss_legendre(engine, net, x, 1, multiply_by_inputs=False)
    theirs = IntegratedGradients(net, multiply_by_inputs=False).attribute(x, target=1, n_steps=STEPS,
                                                                          method="gausslegendre")
    assert_agree(ours.attributions, theirs, quadrature_terms(ours, (torch.ones_like(x),)))
    assert ours.completeness is None and np.all(np.isnan(ours.delta)) and "no completeness" in ours.summary()
    complete = gauss_legendre(engine, net, x, 1)
    assert complete is not ours  # part of the cache key
    assert torch.equal(ours.attributions * x, complete.attributions)  # the same integral, times x - 0
    with pytest.raises(ValueError, match="multiply_by_inputs=False applies to integrated_gradients"):
        engine.attribute(net, x, 1, method="gradient", multiply_by_inputs=False)


def test_layer_integrated_gradients_without_multiplying_match_captum(engine):
    model = BasicModel_MultiLayer()
    x = torch.randn(3, 3) * 3
    ours = layer_integrated_gradients(engine, model, model.linear1, x, 0, steps=STEPS, rule="gauss-legendre",
                                      keep_all_gradients=True, multiply_by_inputs=False)
    theirs = LayerIntegratedGradients(model, model.linear1, multiply_by_inputs=False).attribute(
        x, target=0, n_steps=STEPS, method="gausslegendre")
    assert_agree(ours.attributions, theirs, quadrature_terms(ours, (torch.ones(3, 4),)))


def test_completeness_delta_of_captums_attributions_matches_captums(engine):
    model = BasicModel_MultiLayer()
    x, baseline = torch.randn(4, 3) * 3, torch.randn(1, 3)
    ig = IntegratedGradients(model)
    attributions = ig.attribute(x, baseline, target=1, n_steps=8, method="gausslegendre")
    theirs = ig.compute_convergence_delta(attributions, baseline, x, target=1)
    calls = []

    def forward(z):
        calls.append(torch.is_grad_enabled())
        return model(z)

    ours = engine.completeness_delta(forward, x, attributions, 1, baseline)
    assert calls == [False]  # one forward pass of input and baseline together, without gradients
    # a sum of 3 float32 attributions, and two scores whose three layers of sums round by eps of their size each
    with torch.no_grad():
        size = attributions.abs().sum(1) + 3 * (output_size(model, x) + output_size(model, baseline))[:, 1]
    np.testing.assert_allclose(ours, theirs.double(), rtol=0, atol=2 * EPS * float(size.max()))


def test_completeness_delta_of_our_attributions_is_the_scans_own(engine):
    net, x = relu_net(), torch.randn(3, 5)
    shift = torch.randn(3, 5)
    forward = lambda z, s: net(z + s)
    result = engine.attribute(forward, x, [0, 2], steps=16, output="softmax", forward_args=shift)
    delta = completeness_delta(forward, x, result.attributions, [0, 2], output="softmax", forward_args=shift,
                               engine=engine)
    assert delta.shape == (3, 2)
    # the scores come from batches of another shape: each logit rounds by 2 layers * eps * size in both, and a
    # softmax score moves by at most half the largest logit change, plus its own rounding (scores <= 1)
    size = (x + shift).abs()
    with torch.no_grad():
        for layer in net[::2]:
            size = size @ layer.weight.abs().T + layer.bias.abs()
    np.testing.assert_allclose(delta, result.delta, rtol=0, atol=4 * EPS * (float(size.max()) + 1))
    with pytest.raises(ValueError, match="do not fit"):
        engine.completeness_delta(forward, x, result.attributions[0], [0, 2], forward_args=shift)


def test_inputs_of_another_precision_than_the_models_weights_are_refused_with_what_to_do():
    net = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"input 0 is torch.float64 but the model's weights are torch.float32"):
        AttributionEngine(device="cpu").attribute(net, torch.randn(2, 3, dtype=torch.float64), 0)
    double = AttributionEngine(device="cpu").attribute(net.double(), torch.randn(2, 3, dtype=torch.float64), 0)
    assert double.attributions.dtype == torch.float64


@pytest.mark.parametrize("threads, name", [(1, "CPU (1 thread)"), (2, "CPU (2 threads)")])
def test_the_cpu_device_is_named_with_its_thread_count(monkeypatch, threads, name):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert AttributionEngine(device="cpu").device_name == name
