"""ImageNet readers on small trees written in the exact ILSVRC-2012 layouts (real JPEG/PNG, real meta.mat)."""

import numpy as np
import pytest

from rustyasg.data import ImageNet, get_dataset
from rustyasg.data.errors import MalformedDataError, MissingDataFileError
from rustyasg.data.formats.imagenet import read_synsets

PIL = pytest.importorskip("PIL.Image")
scipy_io = pytest.importorskip("scipy.io")

WNIDS = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus",
         "n01484850": "great white shark, white shark"}


def _jpeg(path, seed, size=(20, 30), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = size + ((3,) if mode == "RGB" else ())
    PIL.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path, quality=95)


def _devkit(root, val_truth):
    """meta.mat as the devkit ships it: a struct array of synsets, leaves (num_children 0) with ILSVRC2012_ID."""
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    # ids are not in wnid order, and an inner node is present: the reader must use the leaves' ids
    rows = [(2, "n01443537", WNIDS["n01443537"], 0), (1, "n01440764", WNIDS["n01440764"], 0),
            (3, "n01484850", WNIDS["n01484850"], 0), (1001, "n00001740", "entity", 5)]
    synsets = np.array(rows, dtype=dtype)
    scipy_io.savemat(str(data / "meta.mat"), {"synsets": synsets})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{v}\n" for v in val_truth))


@pytest.fixture
def devkit_root(tmp_path):
    for i, wnid in enumerate(WNIDS):
        for k in range(2):
            _jpeg(tmp_path / "train" / wnid / f"{wnid}_{k + 1}.JPEG", seed=10 * i + k)
    truth = [3, 1, 2, 2]  # ILSVRC2012_IDs: val 1 is a shark, 2 a tench, 3 and 4 goldfish
    for n in range(1, 5):
        _jpeg(tmp_path / "val" / f"ILSVRC2012_val_{n:08d}.JPEG", seed=100 + n, mode="L" if n == 4 else "RGB")
    _devkit(tmp_path, truth)
    return tmp_path


def test_devkit_layout_train_and_flat_val(devkit_root):
    train = ImageNet(devkit_root, "train")
    assert train.classes == sorted(WNIDS) and train.class_names[0] == "tench, Tinca tinca"
    assert len(train) == 6 and train.targets.tolist() == [0, 0, 1, 1, 2, 2]
    image, label = train[3]
    assert image.shape == (3, 20, 30) and image.dtype == np.float32 and label == 1
    assert 0.0 <= image.min() and image.max() <= 1.0
    val = ImageNet(devkit_root, "val")
    assert [val.classes[t] for t in val.targets] == ["n01484850", "n01440764", "n01443537", "n01443537"]
    grey, _ = val[3]  # a greyscale JPEG comes out as 3 equal channels
    assert grey.shape == (3, 20, 30) and np.array_equal(grey[0], grey[2])


def test_kaggle_layout(tmp_path):
    base = tmp_path / "ILSVRC" / "Data" / "CLS-LOC"
    for wnid in WNIDS:
        _jpeg(base / "train" / wnid / f"{wnid}_7.JPEG", seed=1)
    _jpeg(base / "val" / "ILSVRC2012_val_00000009.JPEG", seed=2)
    _jpeg(base / "val" / "ILSVRC2012_val_00000010.JPEG", seed=3)
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} {n}\n" for w, n in WNIDS.items()))
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000010,n01440764 10 20 30 40 n01440764 1 2 3 4 \n"
        "ILSVRC2012_val_00000009,n01484850 5 5 9 9 \n")
    val = get_dataset("imagenet", root=tmp_path, split="val")
    assert [(p.rsplit("/", 1)[-1], val.classes[t]) for p, t in val.samples] == [
        ("ILSVRC2012_val_00000009.JPEG", "n01484850"), ("ILSVRC2012_val_00000010.JPEG", "n01440764")]
    assert len(ImageNet(tmp_path, "train")) == 3


def test_val_sorted_into_class_folders_and_transforms(devkit_root):
    from rustyasg.data.image_transforms import imagenet_transforms

    for n, wnid in enumerate(WNIDS):
        _jpeg(devkit_root / "val_sorted" / "val" / wnid / f"x{n}.JPEG", seed=n, size=(300, 260))
    (devkit_root / "val_sorted" / "LOC_synset_mapping.txt").write_text(
        "".join(f"{w} {n}\n" for w, n in WNIDS.items()))
    val = ImageNet(devkit_root / "val_sorted", "val", transform=imagenet_transforms(train=False))
    image, label = val[2]
    assert image.shape == (3, 224, 224) and label == 2
    assert abs(float(image.mean())) < 3  # normalised, not raw [0, 1] pixels


def test_errors_name_the_file_and_the_fix(tmp_path, devkit_root):
    with pytest.raises(MissingDataFileError, match="val/ or ILSVRC/Data/CLS-LOC/val/"):
        ImageNet(tmp_path / "nothing", "val")
    (devkit_root / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n2\n")
    with pytest.raises(MalformedDataError, match="needs line 3"):
        ImageNet(devkit_root, "val")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "LOC_synset_mapping.txt").write_text("n01440764 tench\nnot a synset line\n")
    with pytest.raises(MalformedDataError, match="line 2"):
        read_synsets(bad)
    with pytest.raises(ValueError, match="split must be"):
        ImageNet(devkit_root, "test")
