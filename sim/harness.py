"""One Verilog top module holding several PE configurations.

A Verilator build costs about 15 s, nearly all of it compiling Verilator's own runtime, so the
testbenches put every configuration of a component under test into one top module and build it
once. Each configuration's stream ports keep their names behind a prefix: the stream ``i`` of
configuration ``cfg0`` becomes ``cfg0__i__payload``, ``cfg0__i__valid``, ``cfg0__i__ready``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

__all__ = ["Harness", "to_verilog"]


def _is_stream_member(member) -> bool:
    return member.is_signature and {"payload", "valid", "ready"} <= set(member.signature.members)


class Harness(wiring.Component):
    """Top module exposing the stream ports of several components under name prefixes.

    Parameters
    ----------
    components : dict[str, wiring.Component]
        Prefix (a Verilog identifier) to component. Every member of every component's
        signature must be a stream.

    Raises
    ------
    ValueError
        If a prefix is not an identifier or a member is not a stream.
    """

    def __init__(self, components: dict[str, wiring.Component]):
        if not components:
            raise ValueError("a harness needs at least one component")
        members = {}
        for prefix, dut in components.items():
            if not prefix.isidentifier() or "__" in prefix:
                raise ValueError(f"prefix must be an identifier without '__', not {prefix!r}")
            for name, member in dut.signature.members.items():
                if not _is_stream_member(member):
                    raise ValueError(f"member {name!r} of {prefix!r} is not a stream")
                members[f"{prefix}__{name}"] = member
        self._components = dict(components)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for prefix, dut in self._components.items():
            m.submodules[prefix] = dut
            for name, member in dut.signature.members.items():
                outer = getattr(self, f"{prefix}__{name}")
                inner = getattr(dut, name)
                if member.flow == In:
                    wiring.connect(m, wiring.flipped(outer), inner)
                else:
                    wiring.connect(m, inner, wiring.flipped(outer))
        return m


def to_verilog(top: wiring.Component, name: str) -> str:
    """Verilog text of ``top``, byte-identical for identical designs (no source paths)."""
    return verilog.convert(top, name=name, emit_src=False)


def write_verilog(top: wiring.Component, name: str, directory: Path) -> tuple[Path, str]:
    """Write ``top`` as ``<directory>/<name>.v``; return the path and a hash of its text."""
    text = to_verilog(top, name)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.v"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path, digest
