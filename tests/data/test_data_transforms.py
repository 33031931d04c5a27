import numpy as np
import pytest

from rustyasg.data import transforms as T


def test_normalize_per_channel_chw_hwc_and_features(rng):
    x = rng.normal(3.0, 2.0, size=(5, 3, 4, 4)).astype(np.float32)
    mean, std = np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0, 2.0])
    expected = (x - mean[:, None, None]) / std[:, None, None]
    chw = T.Normalize(mean, std, channel_axis=0)
    np.testing.assert_allclose(chw.batch(x), expected, rtol=1e-6)
    np.testing.assert_allclose(chw(x[2]), expected[2], rtol=1e-6)
    assert chw.batch(x).dtype == np.float32  # float32 stays float32
    hwc = T.Normalize(mean, std, channel_axis=-1)
    np.testing.assert_allclose(hwc.batch(x.transpose(0, 2, 3, 1)), expected.transpose(0, 2, 3, 1), rtol=1e-6)
    fitted = T.Normalize.fit(x, channel_axis=0)
    out = fitted.batch(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-5)
    assert T.Normalize(0.5, 0.5)(np.array([0, 255], dtype=np.uint8)).dtype == np.float32
    with pytest.raises(ValueError, match="std contains zeros"):
        T.Normalize(0.0, [1.0, 0.0])


def test_min_max_scale_matches_sklearn(rng):
    from sklearn.preprocessing import MinMaxScaler

    x = rng.normal(size=(50, 4)) * [1, 10, 100, 0]  # last column constant
    ours = T.MinMaxScale.fit(x, feature_range=(-1, 2), channel_axis=-1).batch(x)
    np.testing.assert_allclose(ours, MinMaxScaler(feature_range=(-1, 2)).fit_transform(x), atol=1e-12)
    np.testing.assert_allclose(T.MinMaxScale(0, 255)(np.array([0, 51, 255], np.uint8)), [0, 0.2, 1], rtol=1e-6)


def test_one_hot_clip_log_flatten(rng):
    labels = rng.integers(0, 5, size=(3, 4))
    oh = T.OneHot(5).batch(labels)
    assert oh.shape == (3, 4, 5) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh.argmax(-1), labels)
    np.testing.assert_array_equal(oh.sum(-1), 1)
    with pytest.raises(ValueError, match="label 7"):
        T.OneHot(5)(np.array([1, 7]))
    x = rng.normal(size=(6, 2, 3))
    np.testing.assert_array_equal(T.Clip(-0.5, 0.5).batch(x), np.clip(x, -0.5, 0.5))
    np.testing.assert_array_equal(T.Clip(max=0)(x), np.minimum(x, 0))
    pos = np.abs(x) + 0.1
    np.testing.assert_allclose(T.Log()(pos), np.log(pos))
    np.testing.assert_allclose(T.Log(offset=1).batch(pos), np.log1p(pos))
    with pytest.raises(ValueError, match="must be > 0"):
        T.Log()(np.array([0.0, 1.0]))
    assert T.Flatten().batch(x).shape == (6, 6) and T.Flatten()(x[0]).shape == (6,)
    assert T.Flatten(start_axis=1).batch(np.zeros((2, 3, 4, 5))).shape == (2, 3, 20)


def test_random_noise_is_seeded_and_has_the_requested_distribution():
    x = np.zeros((2000, 10), dtype=np.float32)
    a, b = T.RandomNoise(std=0.3, mean=0.1, seed=5), T.RandomNoise(std=0.3, mean=0.1, seed=5)
    na = a.batch(x)
    np.testing.assert_array_equal(na, b.batch(x))
    assert na.dtype == np.float32
    assert abs(na.mean() - 0.1) < 0.01 and abs(na.std() - 0.3) < 0.01
    assert not np.array_equal(na, a.batch(x))  # the stream moves on
    clipped = T.RandomNoise(std=5.0, clip=(0, 1), seed=0).batch(x)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_compose_chains_and_accepts_plain_functions(rng):
    x = rng.normal(size=(4, 3))
    t = T.Compose([T.Clip(-1, 1), lambda s: s * 10, T.Normalize(0.0, 2.0)])
    expected = np.clip(x, -1, 1) * 10 / 2
    np.testing.assert_allclose(t.batch(x), expected)
    np.testing.assert_allclose(t(x[1]), expected[1])


def _find_window(padded, crop):
    h, w = crop.shape[-2:]
    for top in range(padded.shape[-2] - h + 1):
        for left in range(padded.shape[-1] - w + 1):
            if np.array_equal(padded[..., top : top + h, left : left + w], crop):
                return top, left
    return None


def test_random_crop_with_padding_takes_a_valid_window_per_sample(rng):
    x = rng.integers(1, 255, size=(16, 3, 8, 8)).astype(np.uint8)
    crop = T.RandomCrop(8, padding=2, seed=0)
    out = crop.batch(x)
    assert out.shape == x.shape and out.dtype == np.uint8
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = {_find_window(padded[i], out[i]) for i in range(16)}
    assert None not in offsets
    assert len(offsets) > 3  # samples get different offsets
    again = T.RandomCrop(8, padding=2, seed=0).batch(x)
    np.testing.assert_array_equal(out, again)
    hwc = T.RandomCrop((4, 5), layout="HWC", seed=1)(x[0].transpose(1, 2, 0))
    assert hwc.shape == (4, 5, 3)
    assert _find_window(x[0], hwc.transpose(2, 0, 1)) is not None
    reflect = T.RandomCrop(6, padding=1, pad_mode="reflect", layout="HW", seed=2).batch(x[:, 0])
    assert reflect.shape == (16, 6, 6)
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(20).batch(x)


def test_random_flips(rng):
    x = rng.normal(size=(400, 1, 3, 5))
    out = T.RandomHorizontalFlip(p=0.5, seed=3).batch(x)
    flipped = np.array([np.array_equal(o, s[..., ::-1]) for o, s in zip(out, x)])
    kept = np.array([np.array_equal(o, s) for o, s in zip(out, x)])
    assert np.all(flipped ^ kept)  # every sample is either untouched or mirrored
    assert 0.4 < flipped.mean() < 0.6
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0).batch(x), x[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0).batch(x), x)
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(x[0]), x[0][:, ::-1])
    hwc = x.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0, layout="HWC").batch(hwc), hwc[:, :, ::-1])


def test_to_dtype_and_lambda():
    img = np.array([[0, 128, 255]], dtype=np.uint8)
    np.testing.assert_allclose(T.ToDtype(np.float32, scale=1 / 255)(img), img / 255, rtol=1e-6)
    assert T.Lambda(np.flip).batch(np.array([[1, 2], [3, 4]])).tolist() == [[2, 1], [4, 3]]
