"""The Molecules page's target boxes: the task explained and, where the model's tasks can be contrasted, the task it
is explained "rather than"."""
from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.sections.molecules_shared import OPEN_TASK_KEY
from families.molecules.explanation import contrast_refusal, is_regression, molecule_key

TASK_KEY, RATHER_THAN_KEY = "mol_task", "mol_rather_than"
NO_CONTRAST = "(none)"


def choose_task(model, features, predictions: np.ndarray) -> int:
    """The task box. One widget per model and molecule (its key names both): Streamlit keeps a widget's state
    and shown label by key, so a shared key would keep the previous molecule's task and probabilities. It starts
    at the most likely task, or at the task Browse's Open button asked for."""
    names = list(model.task_names)
    key = f"{TASK_KEY}:{molecule_key(model, features)}"
    requested = st.session_state.pop(OPEN_TASK_KEY, None)
    if requested in names:
        st.session_state[key] = requested
    elif st.session_state.get(key) not in names:
        st.session_state[key] = names[int(np.argmax(predictions))]
    kinds = ["predicted value" if is_regression(model, t) else "P(active)" for t in names]  # what predict() gives
    what = "predicted probability of active" if set(kinds) == {"P(active)"} else "prediction"
    name = st.selectbox(f"Task ({what})", names, key=key,
                        format_func=lambda t: f"{t}   {kinds[names.index(t)]} = {predictions[names.index(t)]:.3f}")
    return names.index(name)


def choose_contrast(model, task: int) -> int | None:
    """The "... rather than" box, where the model's tasks can be contrasted: the other task of F = log-odds(task) -
    log-odds(other), or None."""
    if contrast_refusal(model) is not None:
        return None
    names = list(model.task_names)
    other = st.selectbox("... rather than (a contrast)", [NO_CONTRAST, *names], key=RATHER_THAN_KEY,
                         help="Explain this task's log-odds minus another task's: which atoms make the molecule "
                              "active on this task rather than on that one.")
    if other == NO_CONTRAST:
        return None
    if other == names[task]:
        st.info("A task rather than itself explains nothing (F is 0): pick another task to contrast with.")
        return None
    return names.index(other)
