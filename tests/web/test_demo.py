"""The MNIST demo page classifies digits drawn on its canvas with the mouse."""

from __future__ import annotations

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.web.demo import MNIST_MEAN, MNIST_STD

from .conftest import serve

SCALE = 10  # canvas pixels per MNIST pixel (the pad is 280x280)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from rustyasg.data import load_mnist
    from rustyasg.web.demo import build_mnist_demo

    out = tmp_path_factory.mktemp("mnist-demo")
    result = build_mnist_demo(out, epochs=1, limit=12000, seed=0)
    _, (x_test, y_test) = load_mnist()
    proc, url = serve(out)
    yield url, result, x_test, y_test
    proc.terminate()
    proc.wait(timeout=10)


def draw_digit(page, image: np.ndarray) -> None:
    """Trace the digit's ink with mouse strokes: one stroke per run of inked pixels in each row."""
    box = page.locator("#pad").bounding_box()
    ink = image.reshape(28, 28) > 0.5
    for y in range(28):
        x = 0
        while x < 28:
            if not ink[y, x]:
                x += 1
                continue
            start = x
            while x < 28 and ink[y, x]:
                x += 1
            cy = box["y"] + (y + 0.5) * SCALE
            page.mouse.move(box["x"] + (start + 0.5) * SCALE, cy)
            page.mouse.down()
            page.mouse.move(box["x"] + (x - 0.5) * SCALE, cy, steps=2)
            page.mouse.up()


def first_of_each_class(y_test, classes):
    """Indices of the first test image of each class (real MNIST test digits, not picked by hand)."""
    return [int(np.flatnonzero(y_test == c)[0]) for c in classes]


@pytest.mark.slow
def test_demo_page_classifies_drawn_digits(demo, page):
    url, result, x_test, y_test = demo
    assert result["test_accuracy"] > 0.9
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    model = result["model"]
    model.eval()
    x = rg.input((1, 1, 28, 28), "float32", name="x")
    cpu_model = rg.function([x], model(x), backend="cpu")
    correct = 0
    for index in first_of_each_class(y_test, range(10)):
        page.click("#clear")
        runs = int(page.evaluate("Number(document.body.dataset.runs ?? 0)"))
        draw_digit(page, x_test[index])
        # Each mouse-up classifies on its own; one more call after the last stroke gives the
        # whole digit's answer (runs are queued, so it lands last).
        page.wait_for_function(f"Number(document.body.dataset.runs ?? 0) > {runs}")
        got = page.evaluate("window.rustyasgDemo.classify().then(() => ({cls: document.querySelector('#prediction')"
                            ".dataset.class, probs: Array.from(window.rustyasgDemo.last), "
                            "pixels: Array.from(window.rustyasgDemo.mnistPixels())}))")
        # The page's answer is the model's answer on the page's 28x28 pixels, computed on the CPU.
        pixels = np.asarray(got["pixels"], np.float32).reshape(1, 1, 28, 28)
        expected = cpu_model((pixels - MNIST_MEAN) / MNIST_STD)
        np.testing.assert_allclose(np.asarray(got["probs"], np.float32), expected[0], rtol=0, atol=1e-4)
        correct += int(got["cls"]) == int(y_test[index])
    assert page.errors == []
    # One miss allowed: a 1-epoch model on 12,000 images, and mouse strokes are not the scanned ink.
    assert correct >= 9, f"{correct}/10 drawn digits classified correctly"
