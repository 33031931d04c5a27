"""Shared set-up of the viz tests: the README's MNIST training step and a headless Chromium."""

import os
import runpy

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts", "viz")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def load_example(name):
    return runpy.run_path(os.path.join(ROOT, "examples", name), run_name="__rustyasg_view__")


@pytest.fixture(scope="session")
def mnist():
    return load_example("view_mnist.py")


@pytest.fixture(scope="session")
def gpt():
    return load_example("view_gpt.py")


@pytest.fixture(scope="session")
def artifacts():
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser(playwright_session):
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()
