"""ig_core: interior and integrated gradients from one batched scan of the counterfactual path.

Knows nothing of images, molecules, words or Streamlit: give it a forward function and tensors.
"""
from .engine import AttributionEngine, default_engine, integrated_gradients, limit_memory_arenas
from .quadrature import FIXED_RULES, RULES, fixed_rule, path_points, trapezoid_weights
from .result import Attribution
from .settings import ScanSettings
from .scan import OUTPUT_TRANSFORMS

__all__ = ["Attribution", "AttributionEngine", "FIXED_RULES", "OUTPUT_TRANSFORMS", "RULES", "ScanSettings", "default_engine",
           "fixed_rule", "integrated_gradients", "limit_memory_arenas", "path_points", "trapezoid_weights"]
