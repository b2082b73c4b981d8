"""Shells: the logic around ``hwgen_top`` that moves frames between a host and the board."""
