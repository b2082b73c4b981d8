"""The small ECP5 design the board-flow tests build (tests/test_ecp5_*.py)."""

#: MobileNet V1 at width 0.125, 32x32, 10 classes, fully folded (fps 5): the smallest zoo
#: network with every PE kind a MobileNet has; 12k LUT4 modelled, 10 minutes through nextpnr.
SMALL = ["mobilenet_v1", "--width", "0.125", "--resolution", "32", "--num-classes", "10",
         "--board", "ecp5-85f", "--fps", "5"]
