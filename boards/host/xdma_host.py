"""Run a built accelerator on the VC707 over PCIe through Xilinx's XDMA driver.

Copied into the vc707 build's ``board/`` folder beside ``frames.py``
(whose framing helpers this uses) and ``design.json``. The XDMA driver
(github.com/Xilinx/dma_ip_drivers, ``XDMA/linux-kernel``) exposes the card's AXI4-Stream
channels as character devices: bytes written to ``/dev/xdma0_h2c_0`` enter ``s_axis``; a read
of ``/dev/xdma0_c2h_0`` returns what ``m_axis`` sends, up to the beat with ``tlast``::

    python3 xdma_host.py --check golden/
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

try:
    from .frames import decode_frame, encode_frame, load_golden, mismatched, output_bytes
except ImportError:
    from frames import decode_frame, encode_frame, load_golden, mismatched, output_bytes

__all__ = ["XdmaAccelerator", "H2C_DEVICE", "C2H_DEVICE", "main"]

H2C_DEVICE = "/dev/xdma0_h2c_0"
C2H_DEVICE = "/dev/xdma0_c2h_0"


class XdmaAccelerator:
    """One frame at a time through the XDMA stream channels.

    Parameters
    ----------
    design_json : str or Path
        The build's ``design.json``.
    h2c, c2h : str
        The host-to-card and card-to-host character devices.
    """

    def __init__(self, design_json: str | Path = "design.json", h2c: str = H2C_DEVICE,
                 c2h: str = C2H_DEVICE):
        self.design = json.loads(Path(design_json).read_text())
        self.h2c, self.c2h = h2c, c2h
        self.fps = 0.0

    def transfer(self, payload: bytes) -> bytes:
        """Send one frame's bytes and return the output frame's bytes.

        The read runs on its own thread, started first: a write blocks until the card has
        taken every byte, and the card stops taking input when its output is not drained.
        """
        received: list[bytes] = []
        with open(self.c2h, "rb", buffering=0) as c2h, open(self.h2c, "wb", buffering=0) as h2c:
            reader = threading.Thread(
                target=lambda: received.append(c2h.read(output_bytes(self.design))))
            reader.start()
            h2c.write(payload)
            reader.join()
        return received[0]

    def run(self, images) -> list[np.ndarray]:
        """Each (H, W, C) image through the card; sets ``fps`` over the whole batch."""
        start = time.perf_counter()
        outputs = [decode_frame(self.transfer(encode_frame(image, self.design)), self.design)
                   for image in images]
        elapsed = time.perf_counter() - start
        self.fps = len(outputs) / elapsed if elapsed > 0 else 0.0
        return outputs


def main(argv: list[str] | None = None) -> int:
    """Command line: run the golden frames, report fps and mismatches; 1 if any differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=Path, required=True, metavar="GOLDEN_DIR")
    parser.add_argument("--design", type=Path, default=Path("design.json"))
    args = parser.parse_args(argv)
    pairs = load_golden(args.check)
    card = XdmaAccelerator(args.design)
    outputs = card.run([inp for inp, _ in pairs])
    bad = mismatched(outputs, pairs)
    print(f"{len(pairs)} frames, {card.fps:.1f} fps, {len(bad)} mismatched {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
