"""ig_core.runtime.host_memory: a scan's resident memory held near what its largest chunk needed;
ig_core.evaluator's chunk sizes, which keep the allocator's pieces reusable."""
import numpy as np
import pytest
import torch

from ig_core.evaluator import GradientEvaluator
from ig_core.inputs import AttributionProblem
from ig_core.runtime import host_memory

MB = 2**20


@pytest.fixture
def resident(monkeypatch):
    """A fake process: its resident memory is set by the test; handing memory back is counted."""
    state = {"bytes": 100 * MB, "returns": 0}
    monkeypatch.setattr(host_memory, "resident_bytes", lambda: state["bytes"])
    monkeypatch.setattr(host_memory, "return_freed_memory", lambda: state.update(returns=state["returns"] + 1))
    return state


def test_memory_is_handed_back_only_when_it_outgrows_the_largest_chunks_need_by_the_slack(resident):
    ceiling = host_memory.ResidentCeiling()  # 100 MB before the scan
    resident["bytes"] = 2100 * MB  # the first full chunk needed 2000 MB: the ceiling is 2100 + 3% of 2000
    ceiling.after_chunk(16)
    resident["bytes"] = 2159 * MB  # smaller chunks, their pieces kept
    ceiling.after_chunk(4)
    ceiling.after_chunk(16)
    assert resident["returns"] == 0
    resident["bytes"] = 2161 * MB
    ceiling.after_chunk(2)
    assert resident["returns"] == 1 and ceiling.returns == 1


def test_a_larger_chunk_raises_the_ceiling_instead_of_handing_memory_back(resident):
    ceiling = host_memory.ResidentCeiling()
    resident["bytes"] = 300 * MB
    ceiling.after_chunk(4)
    resident["bytes"] = 2100 * MB
    ceiling.after_chunk(16)  # more memory, but for a chunk larger than any before
    assert resident["returns"] == 0 and ceiling.ceiling == pytest.approx((2100 + 0.03 * 2000) * MB)


def test_a_small_scan_is_allowed_some_noise(resident):
    ceiling = host_memory.ResidentCeiling()
    resident["bytes"] = 102 * MB  # a small model's chunk: 2 MB
    ceiling.after_chunk(16)
    resident["bytes"] = 120 * MB
    ceiling.after_chunk(4)
    assert resident["returns"] == 0 and ceiling.ceiling == 102 * MB + host_memory.ResidentCeiling.LEAST_EXCESS


def test_resident_bytes_reads_this_process():
    resident = host_memory.resident_bytes()
    assert resident is None or resident > 10 * MB  # a Python process with torch loaded


def problem_of(examples: int) -> AttributionProblem:
    return AttributionProblem(forward=lambda x: x.sum(-1, keepdim=True), inputs=(torch.ones(examples, 3),),
                              baselines=(torch.zeros(examples, 3),), targets=torch.zeros(examples, 1, dtype=torch.long))


def test_on_jemalloc_chunks_are_the_batch_size_then_powers_of_two(resident, monkeypatch):
    monkeypatch.setattr(host_memory, "_JEMALLOC_CONTROL", lambda *args: 0)
    evaluator = GradientEvaluator(problem_of(1), max_batch=16)
    sizes = []
    evaluator.run_in_chunks(16 + 16 + 13, lambda start, stop, measuring: sizes.append(stop - start))
    assert sizes == [16, 16, 8, 4, 1]
    assert evaluator.points_done == 45
    assert evaluator.ceiling.largest_chunk == 16  # a CPU scan's chunks pass the resident ceiling
    sizes.clear()
    GradientEvaluator(problem_of(2), max_batch=12).run_in_chunks(15, lambda s, e, m: sizes.append(e - s))
    assert sizes == [6, 6, 2, 1] and np.sum(sizes) == 15  # 12 // 2 examples = 6 points per whole chunk


def test_on_the_system_allocator_there_is_no_ceiling_and_the_rest_is_one_chunk(monkeypatch):
    monkeypatch.setattr(host_memory, "_JEMALLOC_CONTROL", None)
    evaluator = GradientEvaluator(problem_of(1), max_batch=16)
    sizes = []
    evaluator.run_in_chunks(16 + 13, lambda start, stop, measuring: sizes.append(stop - start))
    assert evaluator.ceiling is None and sizes == [16, 13]
