"""Trust: how far each method can be trusted on a model, from the checks recorded for it (families.trust): the sanity
check, ground truth where it exists (the molecule benchmark, number agreement) and the vision evaluation."""
import streamlit as st

from dashboard.renderers import trust as trust_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import run_page
from families.config import TRUST_DIR
from families.registry import FAMILIES
from families.trust import model_folder_name, read_tables


def page() -> None:
    st.title("Can I trust this map?")
    st.markdown("Completeness says a map adds up; it does not say the map points at what drives the model. Here are "
                "the checks recorded for a model: the **sanity check** (does the map change when the model's weights "
                "are randomised?), **ground truth** where it is known (which atoms make a molecule's logP, which "
                "noun decides a verb's number) and the **vision evaluation** (how fast the score falls as the top "
                "pixels are removed).")
    family_name = st.selectbox("Family", list(FAMILIES), key="trust_family", format_func=str.capitalize)
    family = FAMILIES[family_name]
    folders = [model_folder_name(source.name) for source in family.sources()]
    model = st.selectbox("Model", trust_views.model_choices(family_name, folders), key="trust_model")
    if model is None:
        st.info(f"The {family_name} family has no model here yet.")
        return
    tables = read_tables(family_name, model)
    if tables.empty:
        st.info(f"No check is recorded for {escape_markdown(model)} yet: the commands below record them.")
    else:
        st.subheader("Each method's standing")
        st.dataframe(trust_views.standing_table(tables), hide_index=True)
        if note := trust_views.reference_note(tables):
            st.caption(note)
        for check, rows, source in trust_views.check_tables(tables):
            st.subheader(check.capitalize())
            st.dataframe(rows, hide_index=True)
            st.caption(f"From `{source}`")
    st.subheader("Record more checks")
    st.caption(f"Each command writes its summary to the trust folder ({TRUST_DIR.name}); every family's page also "
               "runs the sanity check on one input (its Sanity check section).")
    for check, command in trust_views.record_commands(family_name, model, family.trust_checks).items():
        st.markdown(f"**{check.capitalize()}**")
        st.code(command, language="bash", wrap_lines=True)


run_page(page)
