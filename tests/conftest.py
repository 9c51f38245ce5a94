import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data (IG_DATA_DIR). A user's fresh clone skips these tests; CI must have the data."""
    value = os.environ.get("IG_DATA_DIR")
    if value and Path(value).is_dir():
        return Path(value).resolve()
    if os.environ.get("CI"):
        pytest.fail("IG_DATA_DIR is not set to the shared data folder in CI")
    pytest.skip("IG_DATA_DIR is not set: point it at the shared data folder to run this test")


@pytest.fixture(autouse=True, scope="session")
def trust_tables_apart(tmp_path_factory):
    """The commands a test runs write their trust tables to a folder of the test session's, never the project's."""
    folder = tmp_path_factory.mktemp("trust")
    before = os.environ.get("IG_TRUST_DIR")
    os.environ["IG_TRUST_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("IG_TRUST_DIR", None)
    else:
        os.environ["IG_TRUST_DIR"] = before


@pytest.fixture
def one_thread():
    """One torch thread: step-by-step LSTM work on a busy 2-core machine took 1 s with 1 thread, 37 s with 2."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a module's scans: this machine's two cores are shared, and more threads than cores slow
    a scan ten-fold."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_addoption(parser):
    parser.addoption("--shape-noise", default=os.environ.get("IG_SHAPE_NOISE"), metavar="SALT",
                     help="scale every CPU matrix product by 1 + s eps, s chosen per operand shapes (tests/"
                          "shape_noise.py): exact comparisons of batches of other shapes fail here as on a Xeon "
                          "with MKL; also IG_SHAPE_NOISE=SALT")


@pytest.fixture(autouse=True)
def shape_noise(request, monkeypatch):
    """Opt-in (--shape-noise=SALT): results of other batch shapes differ in the last bits, as MKL's do on a Xeon.
    Torch function modes are per thread: threads started during the test (Thread.run) get the mode too."""
    salt = request.config.getoption("--shape-noise")
    if not salt:
        yield None
        return
    import threading

    from shape_noise import ShapeNoise

    run = threading.Thread.run

    def run_with_noise(thread):
        with ShapeNoise(salt):
            run(thread)

    monkeypatch.setattr(threading.Thread, "run", run_with_noise)
    with ShapeNoise(salt) as mode:
        yield mode
