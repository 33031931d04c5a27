"""Every public name documents itself with an example (the examples run as doctests of the source tree)."""

import inspect

import rustyasg.data


def test_every_public_name_has_a_docstring_with_an_example():
    missing = []
    for name in rustyasg.data.__all__:
        obj = getattr(rustyasg.data, name)
        if isinstance(obj, str):  # constants such as ENTRY_POINT_GROUP
            continue
        doc = inspect.getdoc(obj) or ""
        if ">>>" not in doc:
            missing.append(name)
    for name in rustyasg.data.metrics.__all__:
        obj = getattr(rustyasg.data.metrics, name)
        if ">>>" not in (inspect.getdoc(obj) or ""):
            missing.append(f"metrics.{name}")
    for name in rustyasg.data.transforms.__all__:
        if ">>>" not in (inspect.getdoc(getattr(rustyasg.data.transforms, name)) or ""):
            missing.append(f"transforms.{name}")
    assert not missing, f"public names without an example: {missing}"
