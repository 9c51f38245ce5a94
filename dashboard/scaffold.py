"""The scaffold pages are built on: the model choice, the attribution method for an item, a scan with progress,
the completeness panel, methods side by side, downloads and the last-resort error display. A page keeps only its
own form and views."""
from __future__ import annotations

import hashlib
import logging
from typing import Callable, Sequence

import pandas as pd
import streamlit as st

from dashboard.renderers import method_comparison
from dashboard.renderers import sanity_checks as sanity_views
from dashboard.renderers.completeness import completeness_frame, evaluation_text, explanation_verdict
from dashboard.renderers.markdown import escape_markdown
from dashboard.session import explain_refining, get_engine, progress_bar, scan_settings
from families import sanity_checks
from families.checkpoint import CheckpointError
from families.config import MODELS_DIR
from families.contract import Explanation, FamilyError, LoadedModel, ModelFamily, ModelSource
from ig_core import Contrast, ScanSettings

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


def load_model(family: ModelFamily, source: ModelSource) -> LoadedModel:
    """The source's model through the one cache of all sessions, keyed by its content digest (reading the source's
    file may raise CheckpointError; loading, FamilyError or CheckpointError)."""
    return _loaded(family.name, source.digest, family, source)


def choose_model(family: ModelFamily) -> LoadedModel | None:
    """The sidebar's model choice among the family's models or an upload; None after saying why there is none."""
    st.sidebar.header("Model")
    sources = family.sources()
    names = [source.name for source in sources] + [UPLOAD]
    choice = st.sidebar.selectbox("Model", names, key=f"{family.name}_model",
                                  help=f"The shipped models and the files of the models folder (${MODELS_DIR.name}/"
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
        model = load_model(family, source)
    except (FamilyError, CheckpointError) as exc:
        message = str(exc)
        if message.startswith(source.name):  # most messages start with the file's name: the heading says it once
            message = "The file" + message.removeprefix(source.name)
        name = escape_markdown(source.name)  # a file's name is user text: shown as typed, never read as Markdown
        st.error(f"**{name} cannot be used.** {message.replace(source.name, name)}")
        return None
    st.sidebar.caption(f"{escape_markdown(model.name)}: {len(model.target_names)} targets; "
                       f"device {get_engine().device_name}")
    return model


def page_settings(family: ModelFamily, model: LoadedModel, item) -> ScanSettings:
    """The shared scan settings; where their method does not apply to this item, says why and offers the methods
    that do (the choice holds for this page only)."""
    settings = scan_settings()
    refusal = family.refusal(model, item, settings.method, **dict(settings.method_options))
    if not refusal:
        return settings
    st.warning(f"{refusal} Choose a method that applies here (or another one on the Home page).")
    name = st.selectbox(f"Method for this {family.input_name}", family.methods(model, item),
                        format_func=method_comparison.label, key=f"{family.name}_method_here")
    return settings.with_method(name)


def straight_line(settings: ScanSettings, sections: str) -> bool:
    """Whether the sections that exist only for the straight-line scan of integrated gradients show; if not, one
    line says why they are absent."""
    if settings.method == method_comparison.SCAN:
        return True
    st.caption(f"{sections}: these come from the straight-line scan of integrated gradients, which "
               f"{method_comparison.chosen_method(settings).label} does not make (choose integrated gradients on the "
               "Home page).")
    return False


def explain(family: ModelFamily, model: LoadedModel, item, targets, settings: ScanSettings | None = None,
            show: Callable[[Explanation], None] | None = None, request: str = "") -> Explanation | None:
    """One run of the settings' method (default: the shared settings) with a progress bar; None after showing why
    it failed. With show (widget-free) the adaptive rule's partial results are drawn as it refines, with a Stop
    button (dashboard.session.explain_refining); `request` names what is explained, for the result a Stop keeps."""
    settings = settings or scan_settings()

    def run(progress, partial=None):
        return family.explain(get_engine(), model, item, targets, settings, progress=progress, partial=partial)

    try:
        if show is not None:
            return explain_refining("Attributing", f"{family.name}_explain", request, settings, run, show)
        with progress_bar("Attributing") as progress:
            return run(progress)
    except (FamilyError, ValueError, RuntimeError) as exc:
        st.error(f"The scan failed: {exc}")
        return None


def completeness_panel(explanation: Explanation, what: str = "input", baseline_choice: bool = True,
                       title: str = "Completeness", note: str = "") -> None:
    """The table of both sides of the method's completeness law and the sum of attributions per target, and the
    verdict; for a method without such a law, one line that says so and why."""
    st.subheader(title)
    settings, a = explanation.settings, explanation.attribution
    verdict = explanation_verdict(explanation, what, baseline_choice)
    if a.completeness_defined:
        f_input, f_baseline, delta, relative = (explanation.per_target(name) for name in
                                                ("score_input", "score_baseline", "delta", "relative_delta"))
        frame = completeness_frame(explanation.target_names, explanation.targets, f_input, f_baseline,
                                   f_input - f_baseline + delta, relative, settings.tolerance, a.completeness)
        number = st.column_config.NumberColumn
        st.dataframe(frame, hide_index=True, column_config={
            **{c: number(format="%.4f") for c in (*frame.columns[1:4], "sum of attributions")},
            "delta": number(format="%.2e"), "relative delta (%)": number(format="%.3f")})
    label = method_comparison.chosen_method(settings).label
    how = (f"{a.rule} rule, {a.steps_used} steps in the integral, {a.points_evaluated} path points evaluated"
           if settings.method == method_comparison.SCAN else evaluation_text(a, label))
    st.caption(f"{how}{'; ' + note if note else ''}.")
    getattr(st, verdict.level)(verdict.text)


def compare_methods(family: ModelFamily, model: LoadedModel, item, targets: Sequence[int | Contrast] | None,
                    settings: ScanSettings, key: str,
                    show: Callable[[list[method_comparison.MethodRun]], None] | None = None) -> None:
    """The "Compare methods" section: the methods chosen (among those that apply) run on the item, shown side by
    side by `show` (default: a table of scores per feature), each with its completeness, then their pairwise rank
    agreement. Targets: those of the page's explanation; the tables show the first."""
    applicable = family.methods(model, item)
    with st.expander("Compare methods", expanded=key in st.session_state):
        with st.form(f"{key}_form"):
            chosen = st.multiselect("Methods", applicable,
                                    default=method_comparison.method_choices(settings, applicable),
                                    format_func=method_comparison.label, key=f"{key}_methods",
                                    help="One engine run each (cached); the gradient and gradient x input are "
                                         "read off the integrated-gradients scan.")
            if st.form_submit_button("Compare"):
                st.session_state[key] = chosen
        names = [name for name in st.session_state.get(key, []) if name in applicable]
        if len(names) < 2:
            st.caption("Choose two or more methods and press Compare.")
            return
        with progress_bar("Running the methods") as progress:
            runs = method_comparison.run_methods(family, get_engine(), model, item, targets, settings, names, progress)
        for run in runs:
            if run.explanation is None:
                st.warning(f"{run.label}: {run.refusal}")
        ran = [run for run in runs if run.explanation is not None]
        if not ran:
            return
        (show or _scores_side_by_side)(ran)
        st.markdown("**Completeness** (first target)")
        st.dataframe(method_comparison.completeness_table(ran), hide_index=True)
        if len(ran) > 1:
            st.markdown("**Rank agreement** (first target): Spearman's rank correlation over all features and over "
                        "the top features of either method by |score|, and the share of top-k features both pick")
            st.dataframe(method_comparison.agreement_table(
                {run.label: method_comparison.feature_scores(run.explanation) for run in ran}), hide_index=True)


def sanity_check(family: ModelFamily, model: LoadedModel, item, targets: Sequence[int | Contrast] | None,
                 settings: ScanSettings, key: str) -> None:
    """The "Sanity check" section: the chosen methods on copies of the model whose weights are re-initialised block
    by block from the output down (families.sanity_checks), each map compared with the trained model's, and the
    methods whose maps stay alike flagged; the input itself runs beside them as the control that must be flagged."""
    applicable = family.methods(model, item)
    with st.expander("Sanity check: randomise the model's weights (Adebayo et al. 2018)",
                     expanded=key in st.session_state):
        with st.form(f"{key}_form"):
            chosen = st.multiselect("Methods", applicable, default=[name for name in (settings.method, "gradient")
                                                                     if name in applicable],
                                    format_func=method_comparison.label, key=f"{key}_methods")
            steps = st.slider("Randomisation steps", 2, 8, 4, key=f"{key}_steps",
                              help="The model's parameter modules from the output down, in this many groups.")
            if st.form_submit_button("Run the sanity check"):
                st.session_state[key] = (chosen, steps)
        if key not in st.session_state:
            st.caption("A map that explains the model must change when the model's weights are replaced by random "
                       "ones. Each method runs again on the randomised copies (cached: a second look is free).")
            return
        names, steps = st.session_state[key]
        with progress_bar("Randomising the model and explaining again") as progress:
            check = sanity_checks.sanity_check(family, get_engine(), model, item, targets, settings, names, steps,
                                               progress=progress)
        st.altair_chart(sanity_views.cascade_chart(check), width="stretch")
        st.markdown(escape_markdown(sanity_views.summary(check)))
        st.dataframe(sanity_views.verdict_table(check), hide_index=True)
        output = "the scores before the softmax" if family.contrast_output else "the page's output"
        st.caption(f"Explained on {output}, for the page's first target. Flagged: Spearman of |scores| of at least "
                   f"{sanity_checks.STILL_SIMILAR} (and above chance for {check.features} features) after the last "
                   "step. Re-initialised with each layer's default initialisation, seed 0.")


def _scores_side_by_side(runs: list[method_comparison.MethodRun]) -> None:
    features = list(runs[0].explanation.scores(0))
    st.dataframe(method_comparison.scores_table(runs, features), hide_index=True)


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
