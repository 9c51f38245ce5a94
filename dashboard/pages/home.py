import streamlit as st

from dashboard.renderers import trust as trust_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.session import get_engine, settings_form
from families.config import RUNS_DIR
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
scan; a change takes effect at once. Every page can also show several methods side by side (**Compare methods**).
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

st.subheader(f"How far {METHODS[settings.method].label} can be trusted")
standings = trust_views.recorded_standings(METHODS[settings.method].label)
for where, line in standings:
    st.markdown(f"- **{escape_markdown(where)}**: {escape_markdown(line)}")
st.caption("From the checks recorded for each family's models (sanity checks, ground truth, the vision evaluation): "
           "the page **Trust: can I trust this map?** shows them all." if standings else
           "No check names this method yet: the page **Trust: can I trust this map?** says how to record them.")

st.subheader("Dataset runs")
st.markdown("A whole collection (a photo folder, a molecule CSV or SDF, a text file cut into windows) is explained "
            "from the command line, with the same settings as here (`--method`, `--rule`, `--steps`, `--tolerance`, "
            "...), into a run folder; a run stopped at any point and started again finishes what is left. For example:")
st.code("python -m runs --family molecules --input tox21_moleculenet.csv --model w2n2 \\\n"
        "    --targets actives --rule gauss-legendre --steps 16 --out results/tox21-w2n2", language="bash")
st.markdown("`python -m runs --help` lists the families, the inputs' options and the targets (`predicted`, `truth`, "
            f"`both`, `actives`, `next_word`). The dashboard reads the runs in the folder that `{RUNS_DIR.name}` names "
            "on the server (default: `results/` in the project), on the pages **Vision: a run's misclassifications**, "
            "**Molecules: a run's actives**, **Language: a corpus run** and **Compare two runs**; each run page opens "
            "an item of its run on the family's own page.")
