"""Fixtures for the web export tests: a real `rustyasg serve-web` process and headless Chromium.

Chromium (Debian's `chromium`) with `--enable-unsafe-webgpu` gives pages a SwiftShader WebGPU
adapter on a machine without a GPU; pages are served from 127.0.0.1, a secure context.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def serve(directory: Path):
    """Start `rustyasg serve-web DIR --port 0`; returns (process, base url)."""
    cli = Path(sys.executable).with_name("rustyasg")
    proc = subprocess.Popen([str(cli), "serve-web", str(directory), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"serve-web did not start: {line!r} {proc.stderr.read()}")
    return proc, match.group(0)


@pytest.fixture(scope="session")
def browser(playwright_session):
    """A headless Chromium with WebGPU (playwright drives the Debian build)."""
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield b
    b.close()


@pytest.fixture(scope="module")
def export_root(tmp_path_factory):
    """A folder the module's exports go into, served by one `rustyasg serve-web` process."""
    root = tmp_path_factory.mktemp("web")
    proc, url = serve(root)
    yield root, url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def page(browser):
    """A fresh page; console errors of the page are collected in page.errors."""
    pg = browser.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    yield pg
    pg.close()
