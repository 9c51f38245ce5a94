"""dashboard.session.explain_refining: partial results drawn in place as the error falls, and a Stop that keeps one."""
from streamlit.testing.v1 import AppTest


def refining_script():
    """A page whose explain hands out three partial results (errors falling) before its final one; with
    STOP_AFTER_FIRST it is interrupted after the first, as a click on Stop interrupts a real scan."""
    import types

    import streamlit as st

    from dashboard.session import explain_refining
    from ig_core import ScanSettings

    def explanation(error: float, points: int):
        attribution = types.SimpleNamespace(max_relative_delta=error, points_evaluated=points, stopped_early=False)
        return types.SimpleNamespace(attribution=attribution, settings=types.SimpleNamespace(tolerance=0.01))

    class Interrupted(Exception):
        pass

    def explain(progress, partial):
        st.session_state.setdefault("scans", 0)
        st.session_state.scans += 1
        for error, points in ((0.041, 16), (0.017, 24), (0.012, 31)):
            partial(explanation(error, points))
            if st.session_state.get("stop_after_first"):
                raise Interrupted
        progress(1.0)
        return explanation(0.006, 40)

    def show(result):
        st.session_state.setdefault("drawn", []).append(result.attribution.max_relative_delta)
        st.write(f"picture at {result.attribution.max_relative_delta}")

    try:
        result = explain_refining("Attributing", "demo", st.session_state.get("request", "photo 1"), ScanSettings(),
                                  explain, show)
        st.write(f"result at {result.attribution.max_relative_delta}")
        st.session_state["stopped"] = result.attribution.stopped_early
    except Interrupted:
        st.write("interrupted")


def test_each_partial_result_is_drawn_in_place_and_the_final_one_replaces_them():
    app = AppTest.from_function(refining_script, default_timeout=120).run()
    assert app.session_state["drawn"] == [0.041, 0.017, 0.012]  # drawn in order as the error fell
    texts = [element.value for element in app.markdown]
    assert texts == ["result at 0.006"]  # the partial pictures and the refining line are gone
    assert "demo_refinement" not in app.session_state


def test_stop_keeps_the_latest_partial_result_until_the_user_refines_further():
    app = AppTest.from_function(refining_script, default_timeout=120)
    app.session_state["stop_after_first"] = True
    app.run()
    assert [element.value for element in app.markdown][-1] == "interrupted"
    app.button(key="demo_stop").click().run()  # the rerun a click on Stop makes
    assert [element.value for element in app.markdown][-1] == "result at 0.041"
    assert "4.10% completeness error after 16 path points" in app.info[0].value
    assert app.session_state["stopped"]  # the verdicts below the picture say it was stopped
    assert app.session_state["scans"] == 1  # the kept result, no new scan
    app.run()  # any later rerun of the same request keeps it
    assert [element.value for element in app.markdown][-1] == "result at 0.041" and app.session_state["scans"] == 1
    app.session_state["stop_after_first"] = False
    app.button(key="demo_resume").click().run()  # it reruns the page at once, which scans afresh
    assert [element.value for element in app.markdown][-1] == "result at 0.006" and app.session_state["scans"] == 2
    assert not app.session_state["stopped"]


def test_another_request_does_not_get_the_result_kept_for_the_first():
    app = AppTest.from_function(refining_script, default_timeout=120)
    app.session_state["stop_after_first"] = True
    app.run()
    app.button(key="demo_stop").click().run()
    app.session_state["stop_after_first"] = False
    app.session_state["request"] = "photo 2"
    app.run()
    assert [element.value for element in app.markdown][-1] == "result at 0.006" and app.session_state["scans"] == 2


def test_the_run_picker_counts_a_runs_items_by_what_became_of_them_not_its_rows():
    from dashboard.session import run_label

    complete = {"status": "complete", "items": 200,
                "counts": {"rows": 230, "items": 200, "explained": 170, "refused": 0, "skipped": 30}}
    assert run_label("tox21", complete) == "tox21 (200 items: 170 explained, 30 skipped; complete)"
    assert run_label("mixed", {"status": "complete", "counts": {"rows": 18, "items": 12, "explained": 12}}) == \
        "mixed (12 items: 12 explained; complete)"
    assert run_label("big", {"status": "running", "items": 900}) == "big (900 items; running)"
