"""Run images through the accelerator on a board behind the UART shell (the ULX3S).

    python serial_host.py /dev/ttyUSB0 --check golden/
    python serial_host.py /dev/ttyUSB0 --images x.npy --output y.npy
    python serial_host.py socket://localhost:5000 --check golden/    # any pyserial URL

Images are quantized integer frames (N, H, W, C) as the golden model takes them; outputs are
the accelerator's integers in the golden model's output shape. The port is any pyserial URL,
so the same program drives the board and the Verilator model of its top (tests/).
Needs numpy and pyserial only; ``frames.py`` and ``design.json`` sit next to this file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    from .frames import decode_frame, encode_frame, load_golden, mismatched, output_bytes
except ImportError:                 # run as a script from a board/ folder
    from frames import decode_frame, encode_frame, load_golden, mismatched, output_bytes

__all__ = ["SerialAccelerator", "main"]

HERE = Path(__file__).resolve().parent


class SerialAccelerator:
    """The accelerator behind a serial port.

    Parameters
    ----------
    port : str
        A device (``/dev/ttyUSB0``) or any pyserial URL (``socket://host:port``).
    design : dict
        ``design.json``: stream shapes and the input and output shapes.
    baud : int
        Serial rate; the shell's (see README.md).
    timeout : float
        Seconds to wait for a frame's output before giving up.
    """

    def __init__(self, port: str, design: dict, *, baud: int = 3_000_000, timeout: float = 10.0):
        import serial                       # pyserial; imported here so --help needs numpy only
        self.design = design
        self.serial = serial.serial_for_url(port, baudrate=baud, timeout=timeout)
        self.timeout = timeout
        self._out_bytes = output_bytes(design)
        # A break resets the accelerator and the shell: start on a frame boundary.
        self.serial.reset_input_buffer()
        self.serial.send_break(0.01)
        time.sleep(0.01)

    def close(self) -> None:
        self.serial.close()

    def run(self, images) -> tuple[np.ndarray, float]:
        """Outputs for ``images`` (one frame in flight) and the frames per second achieved.

        Raises
        ------
        TimeoutError
            If a frame's output does not arrive within ``timeout`` seconds.
        """
        outputs = []
        start = time.perf_counter()
        for k, image in enumerate(images):
            self.serial.write(encode_frame(image, self.design))
            raw = self.serial.read(self._out_bytes)
            if len(raw) != self._out_bytes:
                raise TimeoutError(f"frame {k}: {len(raw)} of {self._out_bytes} output bytes "
                                   f"arrived in {self.timeout:g} s")
            outputs.append(decode_frame(raw, self.design))
        seconds = time.perf_counter() - start
        return np.stack(outputs), len(outputs) / seconds if seconds else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", help="serial device or pyserial URL")
    ap.add_argument("--baud", type=int, default=3_000_000)
    ap.add_argument("--design", type=Path, default=HERE / "design.json",
                    help="the build's design.json (default: next to this program)")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--check", type=Path, metavar="DIR",
                       help="run DIR/input_<k>.npy and compare with DIR/output_<k>.npy")
    group.add_argument("--images", type=Path, help=".npy of (N, H, W, C) quantized images")
    ap.add_argument("--output", type=Path, help="where --images writes the outputs (.npy)")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args(argv)
    design = json.loads(args.design.read_text())
    if args.check:
        pairs = load_golden(args.check)
        images = [x for x, _ in pairs]
    else:
        pairs, images = None, list(np.load(args.images))
    acc = SerialAccelerator(args.port, design, baud=args.baud, timeout=args.timeout)
    try:
        outputs, fps = acc.run(images)
    finally:
        acc.close()
    print(f"{len(images)} frames at {fps:.2f} frames/s over the link")
    if pairs is not None:
        bad = mismatched(outputs, pairs)
        if bad:
            print(f"MISMATCH in frames {bad}: outputs differ from the golden model")
            return 1
        print(f"bit-exact: {len(images)} of {len(images)} frames match the golden model")
    if args.output:
        np.save(args.output, outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
