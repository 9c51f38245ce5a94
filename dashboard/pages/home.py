import streamlit as st

from dashboard.session import get_engine, settings_form
from ig_core import METHODS

st.title("Integrated gradients debugger")
st.markdown(
    """
Why did the network say that? This dashboard attributes a prediction to the input features with
**integrated gradients** (Sundararajan, Taly and Yan, *Gradients of Counterfactuals*): it scales the
input down towards a baseline, looks at the gradients of those counterfactuals (*interior gradients*),
and sums them along the path. The attributions add up to F(input) - F(baseline) (*completeness*),
and every page shows how closely they do.

- **Vision**: which pixels drive an ImageNet classifier; saturation, interior gradients, misclassifications.
- **Molecules**: which atoms and bonds drive a weave network's activity prediction.
- **Language**: which earlier words drive an LSTM's next-word prediction.

One scan of the path per input gives the attributions, the interior gradients, the prediction trend
and the completeness check. The settings below apply to every page: the attribution method (integrated
gradients, or one of the methods users compare it with, each with its own completeness law or none) and the
scan. Every page can also show several methods side by side (**Compare methods**).
"""
)
engine = get_engine()
st.info(f"Device: **{engine.device_name}**")
settings = settings_form()
options = ", ".join(f"{name} {value}" for name, value in settings.method_options)
st.caption(f"Current: rule {settings.rule}, steps {settings.steps}, tolerance {settings.tolerance:g}, "
           f"budget {settings.max_steps}, batch {settings.max_batch or engine.max_batch}, "
           f"mixed precision {settings.amp or 'off'}; method: {METHODS[settings.method].label}"
           f"{f' ({options})' if options else ''}")
