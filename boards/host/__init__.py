"""Host programs that talk to a built accelerator on a board, and the framing they share.

Everything here is copied into a build's ``board/`` folder and runs on the host (or a Zynq's
processing system) without hwgen installed, so it depends on numpy (and pyserial, pynq or pyxrt
where a program says so) only, and imports its siblings by plain module name.
"""
