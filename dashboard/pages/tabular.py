"""Tables: which columns drive a table classifier's prediction for one row (the smallest family's page)."""
import pandas as pd
import streamlit as st

from dashboard.renderers import method_comparison
from dashboard.renderers.charts import feature_bars
from dashboard.scaffold import (
    choose_model,
    compare_methods,
    completeness_panel,
    explain,
    page_settings,
    run_page,
    sanity_check,
    scores_download,
)
from families.config import MODELS_DIR
from families.contract import InputError
from families.registry import FAMILIES

FAMILY = FAMILIES["tabular"]
REQUEST_KEY = "tabular_request"
PREDICTED = -1
MAKING_A_MODEL = f"""
The page reads a **`.pt` checkpoint of a table classifier**: a file that `torch.save` wrote from a dict of plain
values and tensors (read safely, nothing in it runs), of format `ig-dashboard/table-classifier`, version 1, holding
the feature columns' names, the class names, the hidden layer sizes and the weights. The model it describes
(`families.tabular.family.TableClassifier`) standardises each column by its training mean and standard deviation,
then runs a multilayer perceptron with ReLU layers to one logit per class; the page explains the class
probabilities, from the training mean row (the baseline) to your row. The training rows the file may ship are the
reference set of expected gradients.

Train one from a CSV whose columns are all numbers but the one to predict (its distinct values are the classes):

```bash
python -m families.tabular.train data.csv --target COLUMN --out model.pt
```

It holds out a fifth of the rows and writes the accuracy on them in the model's card (`model.md`). Files in
`${MODELS_DIR.name}/tabular/` on the server are listed in the sidebar; upload any other one there.
"""


def row_form(model) -> None:
    """The row and the targets; a submitted request is kept in the session, so reruns show it again."""
    columns, means = model.extra, model.module.mean.tolist()
    with st.form("tabular_form"):
        cells = st.columns(min(len(columns), 4))
        values = [cells[i % len(cells)].number_input(name, value=float(mean), format="%.4g", key=f"tabular_{name}")
                  for i, (name, mean) in enumerate(zip(columns, means))]
        chosen = st.multiselect("Explain the classes", range(len(model.target_names)),
                                format_func=lambda t: model.target_names[t],
                                help="One scan for all of them; none: the predicted class.")
        if st.form_submit_button("Explain", type="primary"):
            st.session_state[REQUEST_KEY] = dict(model=model.key, values=values, targets=list(chosen))


def column_bars(explanation) -> None:
    scores = {name: explanation.scores(t) for t, name in enumerate(explanation.target_names)}
    st.altair_chart(feature_bars(scores), width="stretch")


def main() -> None:
    st.title("Tables")
    st.caption("Integrated gradients (or the method chosen on the Home page) of a table classifier's class "
               "probability along the path from the training mean row (the baseline) to your row: each column's "
               "share of the change. Expected gradients draw their baselines from the training rows the model "
               "ships, where it ships any.")
    model = choose_model(FAMILY)
    with st.expander("How to make a model for this page", expanded=model is None):
        st.markdown(MAKING_A_MODEL)
    if model is None:
        return
    row_form(model)
    request = st.session_state.get(REQUEST_KEY)
    if request is None or request["model"] != model.key:
        st.info("Enter a row and press Explain.")
        return
    try:
        row = FAMILY.parse(model, request["values"])
    except InputError as exc:
        st.error(str(exc))
        return
    settings = page_settings(FAMILY, model, row)
    st.subheader(f"Column attributions: {method_comparison.chosen_method(settings).label}")
    explanation = explain(FAMILY, model, row, request["targets"], settings, show=column_bars, request=repr(request))
    if explanation is None:
        return
    column_bars(explanation)
    scores = {name: explanation.scores(t) for t, name in enumerate(explanation.target_names)}
    st.dataframe(pd.DataFrame({"column": model.extra, "value": row[0].tolist(),
                               "baseline (mean)": model.module.mean.tolist(),
                               **{f"attribution: {name}": list(s.values()) for name, s in scores.items()}}),
                 hide_index=True)
    completeness_panel(explanation, what="row", baseline_choice=False)
    scores_download(explanation, "row", ",".join(f"{v:g}" for v in request["values"]))
    compare_methods(FAMILY, model, row, explanation.targets, settings, key="tabular_compare")
    sanity_check(FAMILY, model, row, explanation.targets, settings, key="tabular_sanity")


run_page(main)
