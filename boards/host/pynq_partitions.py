"""Run a partitioned accelerator on a Zynq board through PYNQ: each partition's bitstream in
turn, the activations kept in DDR between them, fps and reconfiguration times measured.

Copied into a partitioned build's ``board/`` folder beside ``partitions.json``, ``golden/`` and
the partitions' projects ``partition<k>/`` (each with its ``top.bit``, ``top.hwh`` and
``design.json`` once built); runs on the board's PYNQ image::

    python3 pynq_partitions.py --check golden/ [--batch N]

A batch of frames goes through partition 0, then partition 1's bitstream is loaded and the
batch goes through it, and so on: each partition's input is its sources' outputs concatenated
along channels (``partitions.json``), the network's output the output partitions' outputs
concatenated. ``pynq`` is imported only when a bitstream is loaded, so the chaining here is
importable (and tested against the partitions' Verilator models) anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

try:
    from .frames import load_golden, mismatched
    from .pynq_driver import Accelerator
except ImportError:                 # run as a script from a board/ folder
    from frames import load_golden, mismatched
    from pynq_driver import Accelerator

__all__ = ["PartitionedAccelerator", "chain_input", "network_output", "main"]

PLAN = "partitions.json"


def chain_input(images: list[np.ndarray], outputs, sources: list[int],
                input_shape) -> list[np.ndarray]:
    """A partition's input frames: the network's ``images`` (no sources), or its sources'
    outputs concatenated along channels, shaped as the partition's input. ``outputs[j]`` is
    partition ``j``'s output frames (a dict here, a list in the co-simulation, which calls
    this so that both chain the same way)."""
    if not sources:
        return list(images)
    return [np.concatenate([outputs[j][f] for j in sources], axis=-1).reshape(input_shape)
            for f in range(len(images))]


def network_output(outputs: dict[int, list[np.ndarray]], plan: dict) -> list[np.ndarray]:
    """The network's output frames: the output partitions' outputs concatenated along
    channels, shaped as the network's output."""
    last = plan["output"]
    return [np.concatenate([outputs[j][f] for j in last], axis=-1).reshape(plan["output_shape"])
            for f in range(len(outputs[last[0]]))]


class PartitionedAccelerator:
    """The partitions of one design, loaded and run in turn.

    Parameters
    ----------
    board_dir : str or Path
        The folder holding ``partitions.json`` and ``partition<k>/top.bit``.
    load : callable, optional
        Makes the accelerator of one bitstream (loading it); by default
        :class:`pynq_driver.Accelerator`. Anything with ``design`` (its ``design.json``) and
        ``run(frames) -> outputs`` will do.
    """

    def __init__(self, board_dir: str | Path, load: Callable[[Path], object] = Accelerator):
        self.board_dir = Path(board_dir)
        self.plan = json.loads((self.board_dir / PLAN).read_text())
        self.load = load
        self.load_seconds: list[float] = []
        self.fps = 0.0

    def run(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """``images`` as one batch through every partition; sets ``fps`` (reconfiguration
        included) and ``load_seconds`` (each bitstream's load)."""
        outputs: dict[int, list[np.ndarray]] = {}
        self.load_seconds = []
        start = time.perf_counter()
        for k, part in enumerate(self.plan["partitions"]):
            loading = time.perf_counter()
            accelerator = self.load(self.board_dir / part["folder"] / "top.bit")
            self.load_seconds.append(time.perf_counter() - loading)
            frames = chain_input(images, outputs, part["sources"],
                                 accelerator.design["input_shape"])
            outputs[k] = accelerator.run(frames)
        elapsed = time.perf_counter() - start
        self.fps = len(images) / elapsed if elapsed > 0 else 0.0
        return network_output(outputs, self.plan)


def main(argv: list[str] | None = None) -> int:
    """Command line: the golden frames in batches, fps and mismatches; 1 if any differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=Path, required=True, metavar="GOLDEN_DIR",
                        help="folder of input_<k>.npy / output_<k>.npy pairs")
    parser.add_argument("--batch", type=int, default=0,
                        help="frames per batch (default: all the golden frames in one)")
    parser.add_argument("--board-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    pairs = load_golden(args.check)
    accelerator = PartitionedAccelerator(args.board_dir)
    size = args.batch if args.batch > 0 else len(pairs)
    outputs, rates, loads = [], [], []
    for at in range(0, len(pairs), size):
        outputs += accelerator.run([inp for inp, _ in pairs[at:at + size]])
        rates.append(accelerator.fps)
        loads += accelerator.load_seconds
    bad = mismatched(outputs, pairs)
    model = accelerator.plan.get("reconfiguration_seconds_model")
    print(f"{len(pairs)} frames in batches of {size} through {len(accelerator.plan['partitions'])} "
          f"partitions, {min(rates):.1f} fps; bitstream loads {1e3 * min(loads):.1f} to "
          f"{1e3 * max(loads):.1f} ms"
          + (f" (model {1e3 * model:.2f} ms at best)" if model else "")
          + f", {len(bad)} mismatched {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
