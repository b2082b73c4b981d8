"""Run a vendor TCL script in a plain Tcl interpreter and record the tool commands it calls.

This is how the Xilinx projects are checked without Vivado: every command the interpreter
does not know (``create_project``, ``create_bd_cell``, ``set_property``, ...) is recorded with
its arguments after Tcl substitution, and returns a placeholder so the script runs on:

* a ``create_*`` or ``get_*`` command returns its last non-option argument, the object's name
  (``get_bd_pins dma/s_axi_lite_aclk`` -> ``dma/s_axi_lite_aclk``), so nested calls read like
  the objects they stand for;
* any other command returns ``@<command>`` (``make_wrapper`` -> ``@make_wrapper``), which marks
  a value the real tool would compute, a generated file for instance.

``source`` runs the sourced file too (and is recorded); ``file copy``/``mkdir``/``delete`` and
``exit`` are recorded but not executed. The check proves what the script asks for, never that
Vivado accepts it.
"""

from __future__ import annotations

import os
import tkinter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TclCall", "record_tcl", "GENERATED"]

#: Prefix of the placeholder a recorded non-query command returns.
GENERATED = "@"

# Recorder state lives in a namespace; ``unknown`` receives every command Tcl cannot resolve.
_RECORDER = r"""
namespace eval ::hwgen_rec { variable calls {} }
proc ::hwgen_rec::result {name args} {
    if {[string match create_* $name] || [string match get_* $name]
            || [string match current_* $name]} {
        set last ""
        foreach a $args { if {![string match -* $a]} { set last $a } }
        return $last
    }
    return "@$name"
}
proc unknown {name args} {
    lappend ::hwgen_rec::calls [linsert $args 0 $name]
    return [::hwgen_rec::result $name {*}$args]
}
rename source ::hwgen_rec::real_source
proc source {path} {
    lappend ::hwgen_rec::calls [list source $path]
    uplevel #0 [list ::hwgen_rec::real_source $path]
}
rename file ::hwgen_rec::real_file
proc file {sub args} {
    if {$sub in {copy mkdir delete rename}} {
        lappend ::hwgen_rec::calls [linsert $args 0 file_$sub]
        return ""
    }
    return [::hwgen_rec::real_file $sub {*}$args]
}
proc exit {args} { lappend ::hwgen_rec::calls [linsert $args 0 exit] }
"""


@dataclass(frozen=True)
class TclCall:
    """One recorded command: its name and its arguments after substitution."""

    command: str
    args: tuple[str, ...]

    def option(self, name: str) -> str | None:
        """The value after option ``name`` (``-part``), or None when it is absent."""
        for i, arg in enumerate(self.args[:-1]):
            if arg == name:
                return self.args[i + 1]
        return None

    @property
    def positional(self) -> tuple[str, ...]:
        """Arguments that are not options (a flag's value counts as positional)."""
        return tuple(a for a in self.args if not a.startswith("-"))


def record_tcl(script_path: Path | str, cwd: Path | str) -> list[TclCall]:
    """Execute ``script_path`` in a fresh Tcl interpreter from ``cwd``; return the tool calls.

    Parameters
    ----------
    script_path : Path or str
        The TCL file (relative paths are taken from ``cwd``).
    cwd : Path or str
        The folder the tool would run in: relative paths in the script resolve from here.

    Raises
    ------
    FileNotFoundError
        If ``cwd`` or the script does not exist.
    tkinter.TclError
        If the script is not valid Tcl or a real Tcl command in it fails.
    """
    cwd = Path(cwd)
    if not cwd.is_dir():
        raise FileNotFoundError(f"folder {str(cwd)!r} does not exist")
    script = cwd / script_path
    if not script.is_file():
        raise FileNotFoundError(f"TCL script {str(script)!r} does not exist")
    interp = tkinter.Tcl()
    interp.eval(_RECORDER)
    before = os.getcwd()
    try:
        # Tcl's cd changes the process's folder; restored below whatever the script does.
        interp.eval(f"cd {{{cwd.resolve()}}}")
        interp.eval(f"source {{{script.resolve()}}}")
        calls = interp.eval("set ::hwgen_rec::calls")
        return [TclCall(str(c[0]), tuple(str(a) for a in c[1:]))
                for c in (interp.splitlist(x) for x in interp.splitlist(calls))]
    finally:
        os.chdir(before)
