import numpy as np
import pytest

from rustyasg.data import (
    DataLoader,
    ImageFolder,
    MalformedDataError,
    MissingDataFileError,
    MissingDependencyError,
    TruncatedDataError,
    get_dataset,
    read_image,
    read_netpbm,
)
from rustyasg.data.formats import images as image_module


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_netpbm_round_trip(tmp_path, rng, writers, binary, colour, dtype):
    shape = (5, 7, 3) if colour else (5, 7)
    pixels = rng.integers(0, np.iinfo(dtype).max, size=shape).astype(dtype)
    path = tmp_path / ("x.ppm" if colour else "x.pgm")
    path.write_bytes(writers.netpbm_bytes(pixels, binary=binary))
    out = read_netpbm(path)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, pixels)


def test_netpbm_errors(tmp_path, writers):
    good = writers.netpbm_bytes(np.full((4, 4), 9, np.uint8))
    cases = {
        "magic.pgm": (b"P7" + good[2:], MalformedDataError, "starts with b'P7'"),
        "short.pgm": (good[:-3], TruncatedDataError, "has 13 pixel bytes"),
        "header.pgm": (b"P5\n4 4", TruncatedDataError, "header ends"),
        "word.pgm": (b"P5 four 4 255\n" + bytes(16), MalformedDataError, "not a number"),
        "maxval.pgm": (b"P2 1 1 3\n9\n", MalformedDataError, "exceeds maxval"),
    }
    for name, (data, error, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(error, match=message) as info:
            read_image(tmp_path / name)
        assert name in str(info.value)


def test_npy_and_png(tmp_path, rng):
    array = rng.random((6, 5, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), array)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-20])
    with pytest.raises(TruncatedDataError, match="cut.npy"):
        read_image(tmp_path / "cut.npy")
    from PIL import Image

    rgb = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb)
    deep = rng.integers(0, 65536, size=(3, 5)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    pixels, maxval = image_module.decode_image(tmp_path / "deep.png")
    assert pixels.dtype == np.uint16 and maxval == 65535
    np.testing.assert_array_equal(pixels, deep)
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises((TruncatedDataError, MalformedDataError), match="cut.png"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(MalformedDataError, match="junk.png"):
        read_image(tmp_path / "junk.png")


def test_without_pillow_native_formats_work_and_others_say_what_to_install(tmp_path, monkeypatch, writers):
    monkeypatch.setattr(image_module, "_pillow_module", lambda: None)
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(MissingDependencyError, match="pip install Pillow") as info:
        read_image(tmp_path / "a.png")
    assert ".pgm" in str(info.value) and ".npy" in str(info.value)
    (tmp_path / "b.pgm").write_bytes(writers.netpbm_bytes(np.eye(3, dtype=np.uint8)))
    assert read_image(tmp_path / "b.pgm").tolist() == np.eye(3, dtype=np.uint8).tolist()


def _make_folder(root, rng, writers):
    """Two classes of 4x4 images in mixed formats, one nested in a sub-folder."""
    from PIL import Image

    expected = {}
    grey = rng.integers(0, 256, size=(3, 4, 4), dtype=np.uint8)
    (root / "circle" / "more").mkdir(parents=True)
    (root / "square").mkdir()
    (root / "circle" / "0.pgm").write_bytes(writers.netpbm_bytes(grey[0]))
    (root / "circle" / "more" / "1.pgm").write_bytes(writers.netpbm_bytes(grey[1], binary=False))
    Image.fromarray(grey[2]).save(root / "square" / "2.png")
    np.save(root / "square" / "3.npy", grey[0].astype(np.uint8))
    (root / "square" / "notes.txt").write_text("ignored")
    expected[str(root / "circle" / "0.pgm")] = grey[0]
    expected[str(root / "circle" / "more" / "1.pgm")] = grey[1]
    expected[str(root / "square" / "2.png")] = grey[2]
    return expected


def test_image_folder(tmp_path, rng, writers):
    expected = _make_folder(tmp_path / "train", rng, writers)
    ds = ImageFolder(tmp_path / "train")
    assert ds.classes == ["circle", "square"] and len(ds) == 4
    assert ds.targets.tolist() == [0, 0, 1, 1]
    for i, (path, _) in enumerate(ds.samples):
        image, label = ds[i]
        assert image.dtype == np.float32 and image.shape == (1, 4, 4) and label == ds.targets[i]
        if path in expected:
            np.testing.assert_allclose(image[0], expected[path] / 255, rtol=1e-6)
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 4, 4) and yb.tolist() == [0, 0, 1, 1]
    in_memory = get_dataset("image-folder", root=tmp_path, split="train", in_memory=True)
    np.testing.assert_array_equal(in_memory.inputs, xb)
    only_pgm = ImageFolder(tmp_path / "train", extensions=[".pgm", ".npy"])
    assert len(only_pgm) == 3
    raw = ImageFolder(tmp_path / "train", raw=True)[0][0]
    assert raw.dtype == np.uint8 and raw.shape == (4, 4)


def test_image_folder_errors(tmp_path, rng, writers):
    with pytest.raises(MissingDataFileError, match="no such directory"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.pgm").write_bytes(writers.netpbm_bytes(np.eye(2, dtype=np.uint8)))
    with pytest.raises(MalformedDataError, match="no class sub-folders"):
        ImageFolder(tmp_path / "flat")
    (tmp_path / "flat" / "empty").mkdir()
    (tmp_path / "flat" / "full").mkdir()
    (tmp_path / "flat" / "full" / "a.pgm").write_bytes(writers.netpbm_bytes(np.eye(2, dtype=np.uint8)))
    with pytest.raises(MalformedDataError, match=r"\['empty'\] contain no image files"):
        ImageFolder(tmp_path / "flat")
    (tmp_path / "flat" / "empty" / "b.pgm").write_bytes(writers.netpbm_bytes(np.eye(3, dtype=np.uint8)))
    with pytest.raises(MalformedDataError, match="different shapes"):
        ImageFolder(tmp_path / "flat").to_memory()
