"""``rustyasg convert``: a PyTorch checkpoint to a SafeTensors file, without torch and without running its code.

Example:
    $ rustyasg convert resnet18.pth resnet18.safetensors
    $ rustyasg convert ckpt.pt model.safetensors --key model      # nanoGPT's training checkpoint

    >>> import os, tempfile, numpy as np
    >>> from rustyasg.nn.torch_checkpoint import SAFE_GLOBALS
    >>> ("collections", "OrderedDict") in SAFE_GLOBALS
    True
"""

from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np

from .serialization import PathLike, save_safetensors
from .torch_checkpoint import load_torch_checkpoint


def convert_checkpoint(src: PathLike, dst: PathLike, key: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Write the state dict of the ``torch.save`` file ``src`` to the SafeTensors file ``dst``; returns it.

    The write is atomic (a crash leaves the old ``dst`` or the new one). The source file's name
    and the state dict's entry are recorded in the header metadata.
    """
    state = load_torch_checkpoint(src, key)
    meta = {"format": "pt", "converted_from": os.path.basename(os.fspath(src))}
    if key:
        meta["checkpoint_key"] = key
    save_safetensors(state, dst, metadata=meta)
    return state


def add_convert_command(subparsers) -> None:
    """Register ``rustyasg convert SRC DST [--key KEY]``."""
    p = subparsers.add_parser("convert", help="convert a PyTorch checkpoint (.pt/.pth/.bin) to .safetensors "
                                              "without torch and without running code from the file")
    p.add_argument("src", help="a torch.save file (zip or legacy format)")
    p.add_argument("dst", help="the .safetensors file to write")
    p.add_argument("--key", default=None,
                   help="entry of the checkpoint holding the state dict (e.g. 'model'; dotted for nested); "
                        "default: the file itself or its 'state_dict'/'model'/... entry")
    p.set_defaults(handler=_run_convert)


def _run_convert(args) -> int:
    from .serialization import CheckpointError

    try:
        state = convert_checkpoint(args.src, args.dst, args.key)
    except CheckpointError as exc:
        print(f"rustyasg convert: {exc}")
        return 2
    total = sum(int(a.size) for a in state.values())
    print(f"wrote {args.dst}: {len(state)} tensors, {total:,} values")
    return 0
