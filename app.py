"""Entry point: `python serve.py` (or `streamlit run app.py`). Registers the pages; the engine is shared
(dashboard.session)."""
import streamlit as st

st.set_page_config(page_title="Integrated gradients debugger", layout="wide")
pages = [
    st.Page("dashboard/pages/home.py", title="Home", default=True),
    st.Page("dashboard/pages/vision.py", title="Vision"),
    st.Page("dashboard/pages/vision_evaluation.py", title="Vision evaluation"),
    st.Page("dashboard/pages/vision_runs.py", title="Vision: a run's misclassifications"),
    st.Page("dashboard/pages/molecules.py", title="Molecules"),
    st.Page("dashboard/pages/molecules_browse.py", title="Molecules: browse actives"),
    st.Page("dashboard/pages/molecules_debug.py", title="Molecules: W1N2 vs W2N2"),
    st.Page("dashboard/pages/molecules_runs.py", title="Molecules: a run's actives"),
    st.Page("dashboard/pages/language.py", title="Language"),
    st.Page("dashboard/pages/language_runs.py", title="Language: a corpus run"),
    st.Page("dashboard/pages/runs_compare.py", title="Compare two runs"),
    st.Page("dashboard/pages/tabular.py", title="Tables"),
]
st.navigation(pages).run()
