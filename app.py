"""Entry point: `python serve.py` (or `streamlit run app.py`). Registers the pages, in the sidebar's sections; the
engine is shared (dashboard.session). A page's URL is its file's name (`/vision_runs`): links and tests name it."""
import streamlit as st

st.set_page_config(page_title="Integrated gradients debugger", layout="wide")
pages = {
    "Start": [st.Page("dashboard/pages/home.py", title="Home", default=True),
              st.Page("dashboard/pages/trust.py", title="Trust: can I trust this map?")],
    "Vision": [
        st.Page("dashboard/pages/vision.py", title="Vision"),
        st.Page("dashboard/pages/vision_evaluation.py", title="Vision evaluation"),
        st.Page("dashboard/pages/vision_runs.py", title="Vision: a run's misclassifications"),
    ],
    "Molecules": [
        st.Page("dashboard/pages/molecules.py", title="Molecules"),
        st.Page("dashboard/pages/molecules_browse.py", title="Molecules: browse actives"),
        st.Page("dashboard/pages/molecules_debug.py", title="Molecules: W1N2 vs W2N2"),
        st.Page("dashboard/pages/molecules_runs.py", title="Molecules: a run's actives"),
    ],
    "Language": [
        st.Page("dashboard/pages/language.py", title="Language"),
        st.Page("dashboard/pages/language_runs.py", title="Language: a corpus run"),
    ],
    "Runs": [st.Page("dashboard/pages/runs_compare.py", title="Compare two runs")],
    "Tables": [st.Page("dashboard/pages/tabular.py", title="Tables")],
}
st.navigation(pages, expanded=True).run()  # every page listed, none behind "View more"
