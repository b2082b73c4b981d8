"""Run a built accelerator on the Alveo U250 through XRT (``pyxrt``).

Copied into the u250 build's ``board/`` folder beside ``frames.py``
(whose framing helpers this uses) and ``design.json``. The xclbin holds the free-running
``hwgen_kernel`` and two data movers: ``hwgen_mm2s(in, beats)`` streams ``beats`` words from a
device buffer into the kernel, ``hwgen_s2mm(out, beats)`` writes its output back. Every beat
travels as one word of the movers' power-of-two width, zero-padded::

    python3 xrt_host.py hwgen.xclbin --check golden/
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    from .frames import (decode_frame, encode_frame, load_golden, mismatched,
                         read_weight_load, tdata_bytes)
except ImportError:
    from frames import (decode_frame, encode_frame, load_golden, mismatched, read_weight_load,
                        tdata_bytes)

__all__ = ["XrtAccelerator", "word_bytes", "to_words", "from_words", "main"]


def word_bytes(lanes: int, bits: int) -> int:
    """Bytes of the movers' word for a beat: ``tdata`` bytes rounded up to a power of two."""
    width = tdata_bytes(lanes, bits)
    return 1 << (width - 1).bit_length()


def to_words(payload: bytes, lanes: int, bits: int) -> bytes:
    """Beats back to back (``frames.beats_to_bytes``) to one zero-padded word per beat."""
    width = tdata_bytes(lanes, bits)
    beats = np.frombuffer(payload, dtype=np.uint8).reshape(-1, width)
    words = np.zeros((beats.shape[0], word_bytes(lanes, bits)), dtype=np.uint8)
    words[:, :width] = beats
    return words.tobytes()


def from_words(raw: bytes, lanes: int, bits: int) -> bytes:
    """Inverse of :func:`to_words`: drop each word's padding."""
    words = np.frombuffer(raw, dtype=np.uint8).reshape(-1, word_bytes(lanes, bits))
    return words[:, :tdata_bytes(lanes, bits)].tobytes()


class XrtAccelerator:
    """The xclbin on device 0 and one mover run pair per frame. A design with weights in
    URAM gets its weight load (``weight_load.bin``) streamed once through ``hwgen_mm2s``
    right after the xclbin is loaded (which resets the kernel), before any frame.

    Parameters
    ----------
    xclbin : str or Path
        ``hwgen.xclbin``; ``design.json`` sits in the same folder.
    device : int
        XRT device index.
    """

    def __init__(self, xclbin: str | Path, device: int = 0):
        import pyxrt

        xclbin = Path(xclbin)
        d = self.design = json.loads((xclbin.parent / "design.json").read_text())
        self._pyxrt = pyxrt
        self.device = pyxrt.device(device)
        uuid = self.device.load_xclbin(pyxrt.xclbin(str(xclbin)))
        self.mm2s = pyxrt.kernel(self.device, uuid, "hwgen_mm2s")
        self.s2mm = pyxrt.kernel(self.device, uuid, "hwgen_s2mm")
        self.in_beats, self.out_beats = d["in_beats_per_frame"], d["out_beats_per_frame"]
        self._in_size = self.in_beats * word_bytes(d["in_lanes"], d["in_bits"])
        self._out_size = self.out_beats * word_bytes(d["out_lanes"], d["out_bits"])
        self._in = pyxrt.bo(self.device, self._in_size, pyxrt.bo.normal, self.mm2s.group_id(0))
        self._out = pyxrt.bo(self.device, self._out_size, pyxrt.bo.normal, self.s2mm.group_id(1))
        self.fps = 0.0
        load = read_weight_load(xclbin.parent, d)
        if load is not None:
            words = to_words(load, d["in_lanes"], d["in_bits"])
            bo = pyxrt.bo(self.device, len(words), pyxrt.bo.normal, self.mm2s.group_id(0))
            bo.write(np.frombuffer(words, dtype=np.uint8), 0)
            bo.sync(pyxrt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, len(words), 0)
            send = pyxrt.run(self.mm2s)
            send.set_arg(0, bo)
            send.set_arg(2, d["load_beats"])
            send.start()
            send.wait()

    def run(self, images) -> list[np.ndarray]:
        """Each (H, W, C) image through the card; sets ``fps`` over the whole batch."""
        d, sync = self.design, self._pyxrt.xclBOSyncDirection
        outputs = []
        start = time.perf_counter()
        for image in images:
            words = to_words(encode_frame(image, d), d["in_lanes"], d["in_bits"])
            self._in.write(np.frombuffer(words, dtype=np.uint8), 0)
            self._in.sync(sync.XCL_BO_SYNC_BO_TO_DEVICE, self._in_size, 0)
            # Arguments by index: a mover's stream argument is not set from the host.
            receive = self._pyxrt.run(self.s2mm)
            receive.set_arg(1, self._out)
            receive.set_arg(2, self.out_beats)
            send = self._pyxrt.run(self.mm2s)
            send.set_arg(0, self._in)
            send.set_arg(2, self.in_beats)
            receive.start()
            send.start()
            send.wait()
            receive.wait()
            self._out.sync(sync.XCL_BO_SYNC_BO_FROM_DEVICE, self._out_size, 0)
            raw = bytes(self._out.read(self._out_size, 0))
            outputs.append(decode_frame(from_words(raw, d["out_lanes"], d["out_bits"]), d))
        elapsed = time.perf_counter() - start
        self.fps = len(outputs) / elapsed if elapsed > 0 else 0.0
        return outputs


def main(argv: list[str] | None = None) -> int:
    """Command line: run the golden frames, report fps and mismatches; 1 if any differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xclbin", nargs="?", default="hwgen.xclbin")
    parser.add_argument("--check", type=Path, required=True, metavar="GOLDEN_DIR")
    args = parser.parse_args(argv)
    pairs = load_golden(args.check)
    card = XrtAccelerator(args.xclbin)
    outputs = card.run([inp for inp, _ in pairs])
    bad = mismatched(outputs, pairs)
    print(f"{len(pairs)} frames, {card.fps:.1f} fps, {len(bad)} mismatched {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
