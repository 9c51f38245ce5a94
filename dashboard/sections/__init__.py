"""Parts of pages that pages share or that keep a page thin: Streamlit sections built on the renderers."""
