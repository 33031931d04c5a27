"""Shared machinery for passes that replace instructions by others."""

from __future__ import annotations


def replace_uses(program, mapping: dict):
    """Redirect every use of ``old`` ids to ``mapping[old]`` (chains are followed)."""
    if not mapping:
        return program

    def final(i):
        while i in mapping:
            i = mapping[i]
        return i

    for ins in program.instrs:
        if any(a in mapping for a in ins.inputs):
            ins.inputs = tuple(final(a) for a in ins.inputs)
    program.outputs = [final(o) for o in program.outputs]
    program.updates = [(v, final(i)) for v, i in program.updates]
    return program
