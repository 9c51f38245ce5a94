"""The Streamlit dashboard: the app shell (session, scaffold), pure renderers and the pages. `app.py` is its
entry point."""
