"""The scaffold pages are built on: the model choice, a scan with progress, the completeness panel, downloads
and the last-resort error display. A page keeps only its own form and views."""
from __future__ import annotations

import hashlib
import logging

import pandas as pd
import streamlit as st

from models.checkpoint import CheckpointError
from models.family import Explanation, FamilyError, LoadedModel, ModelFamily, ModelSource
from views.completeness import completeness_frame, completeness_verdict
from views.session import get_engine, progress_bar, scan_settings

LOG = logging.getLogger("ig_dashboard")
UPLOAD = "upload a model file..."
MAX_MODEL_UPLOAD_MB = 150  # the largest model file offered (ResNet-50 weights: 98 MB); see .streamlit/config.toml


@st.cache_resource(show_spinner="Loading the model...", max_entries=8)
def _loaded(family_name: str, digest: str, _family: ModelFamily, _source: ModelSource) -> LoadedModel:
    """One model per (family, content digest) for all sessions, on the engine's device and frozen. Raises
    FamilyError or CheckpointError (not cached)."""
    engine = get_engine()
    model = _family.load(_source, engine.device)
    model.module = engine.prepare(model.module)
    return model


def choose_model(family: ModelFamily) -> LoadedModel | None:
    """The sidebar's model choice among the family's models or an upload; None after saying why there is none."""
    st.sidebar.header("Model")
    sources = family.sources()
    names = [source.name for source in sources] + [UPLOAD]
    choice = st.sidebar.selectbox("Model", names, key=f"{family.name}_model",
                                  help="The shipped models and the files of the models folder ($IG_MODELS_DIR/"
                                       f"{family.name}), or a file of your own.")
    if choice == UPLOAD:
        upload = st.sidebar.file_uploader("Model file", type=[s.lstrip(".") for s in family.model_suffixes],
                                          key=f"{family.name}_model_upload", max_upload_size=MAX_MODEL_UPLOAD_MB)
        if upload is None:
            st.info("Upload a model file in the sidebar.")
            return None
        source = ModelSource(f"upload: {upload.name}", data=upload.getvalue())
    else:
        source = sources[names.index(choice)]
    try:
        model = _loaded(family.name, source.digest, family, source)
    except (FamilyError, CheckpointError) as exc:
        st.error(f"**{source.name} cannot be used.** {exc}")
        return None
    st.sidebar.caption(f"{model.name}: {len(model.target_names)} targets; device {get_engine().device_name}")
    return model


def explain(family: ModelFamily, model: LoadedModel, item, targets) -> Explanation | None:
    """One scan with a progress bar; None after showing why it failed."""
    try:
        with progress_bar("Scanning the path") as progress:
            return family.explain(get_engine(), model, item, targets, scan_settings(), progress=progress)
    except (FamilyError, ValueError, RuntimeError) as exc:
        st.error(f"The scan failed: {exc}")
        return None


def completeness_panel(explanation: Explanation, what: str = "input", baseline_choice: bool = True,
                       title: str = "Completeness", note: str = "") -> None:
    """The table of F(input), F(baseline) and the sum of attributions per target, and the verdict."""
    st.subheader(title)
    f_input, f_baseline, delta, relative = (explanation.per_target(name) for name in
                                            ("score_input", "score_baseline", "delta", "relative_delta"))
    settings, a = explanation.settings, explanation.attribution
    frame = completeness_frame(explanation.target_names, explanation.targets, f_input, f_baseline,
                               f_input - f_baseline + delta, relative, settings.tolerance)
    number = st.column_config.NumberColumn
    st.dataframe(frame, hide_index=True, column_config={
        **{c: number(format="%.4f") for c in ("F(input)", "F(baseline)", "F(input) - F(baseline)",
                                              "sum of attributions")},
        "delta": number(format="%.2e"), "relative delta (%)": number(format="%.3f")})
    st.caption(f"{a.rule} rule, {a.steps_used} steps in the integral, {a.points_evaluated} path points evaluated"
               f"{'; ' + note if note else ''}.")
    verdict = completeness_verdict(relative, settings.tolerance, a.rule, a.steps_used, settings.max_steps,
                                   explanation.nothing_per_target(), a.nonfinite, a.message, what, baseline_choice)
    getattr(st, verdict.level)(verdict.text)


def scores_download(explanation: Explanation, item_id: str, source: str) -> None:
    """Every target's scores in the family's units, with completeness, as one CSV."""
    rows = [{**{k: v for k, v in record.items() if k != "scores"}, "feature": feature, "attribution": score}
            for record in explanation.records(item_id, source) for feature, score in record["scores"].items()]
    stem = hashlib.sha256(f"{explanation.model_key}|{source}".encode()).hexdigest()[:12]
    st.download_button("Scores (CSV)", pd.DataFrame(rows).to_csv(index=False), file_name=f"scores_{stem}.csv",
                       mime="text/csv")


def run_page(page) -> None:
    """Run a page's main function; an unexpected error gets a clear message in the browser and its traceback
    in the server log only (exception texts can name server paths). Streamlit's rerun and stop are
    BaseExceptions and pass through."""
    try:
        page()
    except Exception as exc:
        LOG.exception("unexpected error on a page")
        st.error(f"Something went wrong ({type(exc).__name__}). The details are in the server log; "
                 "try another input or setting, and report it if it persists.")
