"""Run a built accelerator on a Zynq board through PYNQ: frames in, outputs out, fps measured.

Copied into a build's ``board/`` folder beside ``top.bit``, ``top.hwh``, ``frames.py`` and
``design.json``; runs on the board's PYNQ image::

    python3 pynq_driver.py top.bit --check golden/

``pynq`` is imported only when the overlay is loaded, so the framing here is importable (and
tested) anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    from .frames import (decode_frame, encode_frame, load_golden, mismatched, output_bytes,
                         read_weight_load)
except ImportError:                 # run as a script from a board/ folder
    from frames import (decode_frame, encode_frame, load_golden, mismatched, output_bytes,
                        read_weight_load)

__all__ = ["Accelerator", "encode_frame", "decode_frame", "load_golden", "main"]


class Accelerator:
    """The overlay on the board and one DMA transfer pair per frame. A design with weights
    in URAM gets its weight load (``weight_load.bin``) sent once, right after the overlay is
    loaded (which resets the accelerator), before any frame.

    Parameters
    ----------
    bitfile : str or Path
        ``top.bit``; its ``top.hwh`` and ``design.json`` sit in the same folder.
    """

    def __init__(self, bitfile: str | Path):
        from pynq import Overlay, allocate

        bitfile = Path(bitfile)
        self.design = json.loads((bitfile.parent / "design.json").read_text())
        self.overlay = Overlay(str(bitfile))
        self.dma = self.overlay.axi_dma
        in_len = len(encode_frame(np.zeros(self.design["input_shape"], dtype=np.int64),
                                  self.design))
        self._in = allocate(shape=(in_len,), dtype=np.uint8)
        self._out = allocate(shape=(output_bytes(self.design),), dtype=np.uint8)
        self.fps = 0.0
        load = read_weight_load(bitfile.parent, self.design)
        if load is not None:
            buffer = allocate(shape=(len(load),), dtype=np.uint8)
            buffer[:] = np.frombuffer(load, dtype=np.uint8)
            self.dma.sendchannel.transfer(buffer)
            self.dma.sendchannel.wait()

    def run(self, images) -> list[np.ndarray]:
        """Each (H, W, C) image through the accelerator; sets ``fps`` over the whole batch."""
        outputs = []
        start = time.perf_counter()
        for image in images:
            self._in[:] = np.frombuffer(encode_frame(image, self.design), dtype=np.uint8)
            # The receive channel is armed first: the output frame may start before the
            # input has been sent whole.
            self.dma.recvchannel.transfer(self._out)
            self.dma.sendchannel.transfer(self._in)
            self.dma.sendchannel.wait()
            self.dma.recvchannel.wait()
            outputs.append(decode_frame(self._out.tobytes(), self.design))
        elapsed = time.perf_counter() - start
        self.fps = len(outputs) / elapsed if elapsed > 0 else 0.0
        return outputs


def main(argv: list[str] | None = None) -> int:
    """Command line: run the golden frames, report fps and mismatches; 1 if any differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bitfile", nargs="?", default="top.bit")
    parser.add_argument("--check", type=Path, required=True, metavar="GOLDEN_DIR",
                        help="folder of input_<k>.npy / output_<k>.npy pairs")
    args = parser.parse_args(argv)
    pairs = load_golden(args.check)
    accelerator = Accelerator(args.bitfile)
    outputs = accelerator.run([inp for inp, _ in pairs])
    bad = mismatched(outputs, pairs)
    print(f"{len(pairs)} frames, {accelerator.fps:.1f} fps, {len(bad)} mismatched {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
