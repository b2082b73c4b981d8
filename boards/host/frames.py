"""Frames to AXI4-Stream beats to bytes and back: the packing every host program and the
co-simulation driver share.

A beat carries ``lanes`` signed ``bits``-bit values, lane 0 in the least significant bits
(docs/streams.md). Two byte-level forms exist:

* **words**: ``ceil(lanes * bits / 32)`` little-endian uint32 per beat, the Verilator driver's
  file format (:func:`pack_beats`, :func:`unpack_beats`);
* **tdata bytes**: ``ceil(lanes * bits / 8)`` bytes per beat, the width of the top's ``tdata``
  and what a DMA engine or the UART shell moves (:func:`beats_to_bytes`,
  :func:`bytes_to_beats`).

This module is copied next to the host programs in a build's ``board/`` folder and must keep
depending on numpy only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["pack_beats", "unpack_beats", "words_per_beat", "tdata_bytes", "beats_to_bytes",
           "bytes_to_beats", "frame_to_beats", "encode_frame", "output_bytes", "decode_frame",
           "load_golden", "mismatched", "read_weight_load"]


def words_per_beat(lanes: int, bits: int) -> int:
    """uint32 words holding one beat of ``lanes`` x ``bits`` (the driver's file format)."""
    return -(-lanes * bits // 32)


def tdata_bytes(lanes: int, bits: int) -> int:
    """Bytes of one beat's ``tdata``: ``lanes * bits`` rounded up to whole bytes."""
    return -(-lanes * bits // 8)


def _check_range(beats: np.ndarray, bits: int) -> None:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if beats.size and (beats.min() < lo or beats.max() > hi):
        bad = beats[(beats < lo) | (beats > hi)][0]
        raise ValueError(f"value {bad} does not fit in {bits} signed bits")


def _to_bytes(beats: np.ndarray, bits: int, width_bytes: int) -> np.ndarray:
    beats = np.asarray(beats, dtype=np.int64)
    if beats.ndim != 2:
        raise ValueError(f"beats must be an (n, lanes) array, not shape {beats.shape}")
    _check_range(beats, bits)
    n, lanes = beats.shape
    bit_planes = (beats[:, :, None] >> np.arange(bits)) & 1          # (n, lanes, bits)
    flat = np.zeros((n, width_bytes * 8), dtype=np.uint8)
    flat[:, :lanes * bits] = bit_planes.reshape(n, lanes * bits)
    return np.packbits(flat, axis=1, bitorder="little")              # (n, width_bytes)


def _from_bytes(raw: np.ndarray, lanes: int, bits: int) -> np.ndarray:
    n = raw.shape[0]
    flat = np.unpackbits(raw.reshape(n, -1), axis=1, bitorder="little")
    planes = flat[:, :lanes * bits].reshape(n, lanes, bits).astype(np.int64)
    values = (planes << np.arange(bits)).sum(axis=2)
    return values - (planes[:, :, -1] << bits)                       # two's complement


def pack_beats(beats: np.ndarray, bits: int) -> np.ndarray:
    """(n, lanes) signed values to (n, words) uint32, lane 0 in the low bits of word 0.

    Raises
    ------
    ValueError
        If a value does not fit in ``bits`` signed bits.
    """
    beats = np.asarray(beats, dtype=np.int64)
    lanes = beats.shape[1] if beats.ndim == 2 else 0
    packed = _to_bytes(beats, bits, 4 * words_per_beat(lanes, bits))
    return np.ascontiguousarray(packed).view("<u4").reshape(beats.shape[0], -1)


def unpack_beats(words: np.ndarray, lanes: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_beats`: (n, words) uint32 to (n, lanes) sign-extended int64."""
    words = np.ascontiguousarray(np.asarray(words, dtype="<u4"))
    return _from_bytes(words.view(np.uint8).reshape(words.shape[0], -1), lanes, bits)


def beats_to_bytes(beats: np.ndarray, bits: int) -> bytes:
    """(n, lanes) signed values as ``n * tdata_bytes(lanes, bits)`` bytes, beat after beat.

    Padding bits above the lanes are zero, as the top's ``m_axis_tdata`` has them.

    Raises
    ------
    ValueError
        If a value does not fit in ``bits`` signed bits.
    """
    beats = np.asarray(beats, dtype=np.int64)
    lanes = beats.shape[1] if beats.ndim == 2 else 0
    return _to_bytes(beats, bits, tdata_bytes(lanes, bits)).tobytes()


def bytes_to_beats(data: bytes, lanes: int, bits: int) -> np.ndarray:
    """Inverse of :func:`beats_to_bytes`: whole beats of ``data`` as (n, lanes) int64.

    Raises
    ------
    ValueError
        If ``data`` is not a whole number of beats.
    """
    width = tdata_bytes(lanes, bits)
    if len(data) % width:
        raise ValueError(f"{len(data)} bytes are not a whole number of {width}-byte beats")
    raw = np.frombuffer(bytes(data), dtype=np.uint8).reshape(-1, width)
    return _from_bytes(raw, lanes, bits)


def frame_to_beats(frame: np.ndarray, lanes: int) -> np.ndarray:
    """An (H, W, C) frame as (H*W*C/lanes, lanes) beats: pixels row-major, channels fastest."""
    frame = np.asarray(frame, dtype=np.int64)
    if lanes < 1 or frame.shape[-1] % lanes:
        raise ValueError(f"{frame.shape[-1]} channels do not fold into beats of {lanes} lanes")
    return frame.reshape(-1, lanes)


# -- what every host program does with a build's design.json and golden/ --------------------
def encode_frame(image: np.ndarray, design: dict) -> bytes:
    """One (H, W, C) frame as the bytes the DMA sends: its beats back to back.

    Raises
    ------
    ValueError
        If the frame's shape is not the design's input shape.
    """
    image = np.asarray(image)
    if tuple(image.shape) != tuple(design["input_shape"]):
        raise ValueError(f"frame shape {image.shape} is not the design's input shape "
                         f"{tuple(design['input_shape'])}")
    return beats_to_bytes(frame_to_beats(image, design["in_lanes"]), design["in_bits"])


def output_bytes(design: dict) -> int:
    """Bytes of one output frame as the DMA receives it."""
    return design["out_beats_per_frame"] * tdata_bytes(design["out_lanes"], design["out_bits"])


def decode_frame(raw: bytes, design: dict) -> np.ndarray:
    """The received bytes of one output frame as an array of the design's output shape."""
    beats = bytes_to_beats(raw[:output_bytes(design)], design["out_lanes"], design["out_bits"])
    return beats.reshape(design["output_shape"])


def read_weight_load(folder: Path, design: dict) -> bytes | None:
    """The bytes of the design's weight load (``design.json``'s ``weight_load`` file beside
    it), to send on the input stream once after the bitstream is loaded and before any frame
    (docs/streams.md, "Weight load"); None when every weight is in the bitstream.

    Raises
    ------
    ValueError
        If the file's size is not ``load_beats`` input beats.
    """
    beats = design.get("load_beats", 0)
    if not beats:
        return None
    path = Path(folder) / design["weight_load"]
    data = path.read_bytes()
    want = beats * tdata_bytes(design["in_lanes"], design["in_bits"])
    if len(data) != want:
        raise ValueError(f"{path} holds {len(data):,} bytes; the design's weight load is "
                         f"{beats:,} beats, {want:,} bytes")
    return data


def load_golden(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(input, expected output) pairs from ``input_<k>.npy`` / ``output_<k>.npy``, by k.

    Raises
    ------
    FileNotFoundError
        If the folder holds no pair, or an input lacks its output.
    """
    inputs = sorted(Path(folder).glob("input_*.npy"), key=lambda p: int(p.stem.split("_")[1]))
    if not inputs:
        raise FileNotFoundError(f"no input_<k>.npy files in {str(folder)!r}")
    pairs = []
    for path in inputs:
        expected = path.with_name(path.name.replace("input_", "output_"))
        if not expected.is_file():
            raise FileNotFoundError(f"{str(path)!r} has no {expected.name}")
        pairs.append((np.load(path), np.load(expected)))
    return pairs


def mismatched(outputs, pairs) -> list[int]:
    """Indices of the frames whose output differs from the expected one of ``pairs``."""
    return [k for k, (out, (_, want)) in enumerate(zip(outputs, pairs))
            if not np.array_equal(out, np.asarray(want).reshape(np.shape(out)))]
