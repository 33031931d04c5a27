"""Resize / CenterCrop / RandomResizedCrop against torch's antialiased interpolation and exact indexing."""

import numpy as np
import pytest

from rustyasg.data.image_transforms import CenterCrop, RandomResizedCrop, Resize, imagenet_transforms

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")


@pytest.mark.parametrize("shape,size", [((3, 37, 53), (20, 31)), ((1, 16, 16), (40, 24)), ((2, 64, 48), 23)])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_resize_matches_torch_antialiased_interpolate(shape, size, mode):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = Resize(size, interpolation=mode)(x)
    h, w = out.shape[1:]
    if isinstance(size, int):  # shorter side to `size`, aspect kept
        assert min(h, w) == size and abs(h / w - shape[1] / shape[2]) < 0.05
    ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=(h, w), mode=mode,
                                          antialias=True, align_corners=False)[0].numpy()
    # Pillow and torch use the same antialiased kernels; they differ only in float rounding
    np.testing.assert_allclose(out, ref, atol=1e-5 * (1 + np.abs(x).max()))


def test_resize_layouts_and_batches_agree():
    x = np.random.default_rng(1).random((4, 10, 14, 3), dtype=np.float32)
    hwc = Resize((5, 7), layout="HWC").batch(x)
    chw = Resize((5, 7)).batch(np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(np.moveaxis(hwc, -1, 1), chw)
    assert Resize(5, layout="HW")(x[0, :, :, 0]).shape == (5, 7)


def test_center_crop_is_exact_indexing_and_pads_small_images():
    x = np.arange(2 * 7 * 9, dtype=np.float32).reshape(2, 7, 9)
    np.testing.assert_array_equal(CenterCrop((3, 4))(x), x[:, 2:5, 2:6])
    padded = CenterCrop(9)(x)
    assert padded.shape == (2, 9, 9) and np.array_equal(padded[:, 1:8], x) and not padded[:, 0].any()


def test_random_resized_crop_is_seeded_and_full_scale_equals_resize():
    x = np.random.default_rng(2).random((3, 30, 40), dtype=np.float32)
    a = RandomResizedCrop(12, seed=5).batch(np.stack([x, x]))
    b = RandomResizedCrop(12, seed=5).batch(np.stack([x, x]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # each sample draws its own box
    full = RandomResizedCrop((15, 20), scale=(1.0, 1.0), ratio=(4 / 3, 4 / 3), seed=0)(x)
    np.testing.assert_allclose(full, Resize((15, 20))(x), atol=1e-6)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="interpolation"):
        Resize(4, interpolation="lanczos9")
    with pytest.raises(ValueError, match="increasing positive"):
        RandomResizedCrop(4, scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="layout"):
        CenterCrop(4, layout="NHWC")


def test_imagenet_pipeline_shapes_and_normalisation():
    x = np.full((3, 320, 480), 0.5, np.float32)
    ev = imagenet_transforms(train=False)(x)
    assert ev.shape == (3, 224, 224)
    np.testing.assert_allclose(ev[:, 0, 0], (0.5 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225],
                               rtol=1e-5)
    assert imagenet_transforms(train=True, seed=0).batch(np.stack([x, x])).shape == (2, 3, 224, 224)
