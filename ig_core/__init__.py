"""ig_core: interior and integrated gradients from one batched scan of the counterfactual path, and the
attribution methods users compare them with, over one batched evaluation of gradients.

Knows nothing of images, molecules, words or Streamlit: give it a forward function and tensors.
"""
from .engine import AttributionEngine, completeness_delta, default_engine, integrated_gradients
from .evaluator import CONTRAST_OUTPUTS, OUTPUT_TRANSFORMS
from .inputs import Contrast
from .layers import layer_integrated_gradients, neuron_integrated_gradients
from .methods import METHODS, AttributionMethod, method, read_off_scan
from .path.quadrature import FIXED_RULES, RULES, fixed_rule, path_points, trapezoid_weights
from .result import Attribution
from .runtime.host_memory import limit_memory_arenas
from .settings import ScanSettings

__all__ = ["CONTRAST_OUTPUTS", "METHODS", "OUTPUT_TRANSFORMS", "Attribution", "AttributionEngine",
           "AttributionMethod", "Contrast", "FIXED_RULES", "RULES", "ScanSettings", "completeness_delta",
           "default_engine", "fixed_rule", "integrated_gradients", "layer_integrated_gradients", "limit_memory_arenas",
           "method", "neuron_integrated_gradients", "path_points", "read_off_scan", "trapezoid_weights"]
