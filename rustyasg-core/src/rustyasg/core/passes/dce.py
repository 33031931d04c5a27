"""Dead-code elimination: keep only instructions that outputs and updates depend on."""

from __future__ import annotations


def dce(program):
    """Drop unreachable instructions (inputs are always kept: they are the call signature)."""
    by_id = program.by_id()
    live = set()
    stack = list(program.roots())
    while stack:
        i = stack.pop()
        if i not in live:
            live.add(i)
            stack.extend(by_id[i].inputs)
    live.update(program.inputs)
    program.instrs = [ins for ins in program.instrs if ins.id in live]
    program.variables = {k: v for k, v in program.variables.items() if k in live}
    return program
