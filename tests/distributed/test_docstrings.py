"""rustyasg.distributed documents every public name (its docstring examples run via --doctest-modules)."""

import rustyasg.distributed


def test_every_public_name_is_documented():
    missing = [n for n in rustyasg.distributed.__all__ if not (getattr(rustyasg.distributed, n).__doc__ or "").strip()]
    assert missing == []
