#!/usr/bin/env bash
# The GPU measurements on a bare GPU machine (torch and torchvision installed, no internet), in one command:
#   bash bench/gpu.sh            # writes bench/RESULTS-gpu.md within LIMIT seconds (default 480)
# It installs what such a machine lacks (streamlit, rdkit, captum, pyarrow, ...) from the wheel folder WHEELS
# (default .whl), made beforehand on a machine with internet, for the GPU machine's Python:
#   pip download -d .whl --only-binary=:all: --python-version 3.X -r bench/requirements.txt
# DEVICE=cpu ARGS=--tiny bash bench/gpu.sh checks the script itself on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-.whl}
DEVICE=${DEVICE:-cuda}
LIMIT=${LIMIT:-480}
OUT=${OUT:-bench/RESULTS-gpu.md}
if ! python -c "import streamlit, rdkit, captum, pyarrow" 2>/dev/null; then
    python -m pip install --quiet --no-index --find-links "$WHEELS" -r bench/requirements.txt
fi
export IG_DATA_DIR=${IG_DATA_DIR:-$(cd .. && pwd)/shared/data}
# the sections in the order that matters most if the limit cuts the run short: each one is written as it ends
timeout "$LIMIT" python -m bench.run --device "$DEVICE" --only 6,1,5,7,2,3,4 --out "$OUT" ${ARGS:-}
