#!/usr/bin/env bash
# Set up RustyASG on a fresh machine and train a CNN on the real MNIST data set (60,000 images).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTYASG_EXTRA_PARTS=""
# shellcheck disable=SC1091
source scripts/_env.sh "tqdm>=4.60 matplotlib>=3.5"
python examples/mnist_cnn.py "$@"
