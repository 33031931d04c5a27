import numpy as np
import pytest

from rustyasg.data import (
    ENTRY_POINT_GROUP,
    InMemoryDataset,
    UnknownDatasetError,
    available_datasets,
    get_dataset,
    register_dataset,
    unregister_dataset,
)


def test_builtins_are_listed():
    names = available_datasets()
    for name in ("mnist", "mnist-idx", "fashion-mnist", "cifar10", "cifar100", "image-folder"):
        assert name in names


def test_builtin_factories_read_files(mnist_idx_dir):
    root, arrays = mnist_idx_dir(gz=False)
    ds = get_dataset("Fashion_MNIST", root=root, split="test")  # case and _/- do not matter
    assert len(ds) == 5 and ds.labels.tolist() == arrays["test"][1].tolist()


def test_register_and_unregister():
    @register_dataset("toy-squares")
    def squares(n=4):
        return InMemoryDataset(np.arange(n) ** 2)

    try:
        assert get_dataset("toy_squares", n=3).arrays[0].tolist() == [0, 1, 4]
        assert "toy-squares" in available_datasets()
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("toy-squares", squares)
        register_dataset("toy-squares", lambda: "replaced", overwrite=True)
        assert get_dataset("toy-squares") == "replaced"
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("mnist", squares)  # built-ins are protected too
    finally:
        unregister_dataset("toy-squares")
    assert "toy-squares" not in available_datasets()


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(UnknownDatasetError) as info:
        get_dataset("cifar-1O")
    message = str(info.value)
    assert "unknown dataset 'cifar-1O'" in message and "did you mean" in message
    assert "mnist" in message and "image-folder" in message


def _plugin_distribution(site, body, entry_points):
    """An installed plugin distribution: a module plus dist-info declaring entry points."""
    (site / "toy_plugin.py").write_text(body)
    info = site / "toy_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")


def test_entry_point_plugins(tmp_path, monkeypatch):
    body = (
        "import numpy as np\n"
        "from rustyasg.data import InMemoryDataset\n"
        "def ramp(n=3, scale=1.0):\n"
        "    return InMemoryDataset(np.arange(n) * scale)\n"
    )
    _plugin_distribution(tmp_path, body, {"toy-ramp": "toy_plugin:ramp", "toy-broken": "toy_plugin:missing"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"toy-ramp", "toy-broken"} <= set(available_datasets())
    assert get_dataset("toy-ramp", n=4, scale=0.5).arrays[0].tolist() == [0.0, 0.5, 1.0, 1.5]
    with pytest.raises(RuntimeError, match="'toy-broken' .*toy-plugin.* failed to load"):
        get_dataset("toy-broken")
