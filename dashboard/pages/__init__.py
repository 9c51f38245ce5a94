"""The dashboard's pages, thin: a form, a call, a render."""
