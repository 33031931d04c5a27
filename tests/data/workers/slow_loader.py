"""Iterate a dataset with 2 workers and a slow step until interrupted; exit 130 on Ctrl-C like a Python CLI."""

import multiprocessing
import sys
import time

import numpy as np

from rustyasg.data import DataLoader


class Slow:
    def __len__(self):
        return 10_000

    def __getitem__(self, i):
        time.sleep(0.01)
        return np.full(1000, i, np.float32)


def main():
    try:
        for k, batch in enumerate(DataLoader(Slow(), batch_size=4, num_workers=2)):
            if k == 2:
                print("workers", *[c.pid for c in multiprocessing.active_children()], flush=True)
            time.sleep(0.2)  # a slow step: the workers fill their prefetch window meanwhile
    except KeyboardInterrupt:
        print("KeyboardInterrupt in the main loop", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
