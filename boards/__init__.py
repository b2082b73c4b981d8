"""Target boards: device resources, default clock, off-chip memory and utilization cap.

>>> from boards import get_board
>>> get_board("vc707").budget().dsp
2380
"""

from .board import Board
from .catalog import BOARDS, UnknownBoardError, board_names, get_board

__all__ = ["Board", "BOARDS", "UnknownBoardError", "board_names", "get_board"]
