"""softsign for RustyASG: ``x / (1 + |x|)``.

>>> import rustyasg.core as rg
>>> from rustyasg_softsign import softsign
>>> softsign(rg.input((2,), name="x")).op
'softsign'
"""

from __future__ import annotations


def softsign(x, name=None):
    """Apply the softsign op (registered by this package's plugin)."""
    import rustyasg.core as rg

    return rg.apply("softsign", x, name=name)
