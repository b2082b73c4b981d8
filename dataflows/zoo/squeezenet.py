"""SqueezeNet 1.0 and 1.1: fire modules of a 1x1 squeeze and parallel 1x1 / 3x3 expands.

- :func:`squeezenet1_0`: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer
  parameters and <0.5MB model size", 2016, Table 1 and the authors' Caffe release
  (``SqueezeNet_v1.0/train_val.prototxt``), as built by torchvision's ``squeezenet1_0``.
- :func:`squeezenet1_1`: the authors' ``SqueezeNet_v1.1`` release (torchvision
  ``squeezenet1_1``): a 3x3 conv1 and earlier pooling, 2.4x fewer MACs at the same accuracy.

Layer names are the Caffe release's (``fire2/squeeze1x1``, ``pool4``, ``conv10``...). The
release has no batch norm; every convolution has a bias. Dropout (``drop9``) is left out.

The Caffe v1.0 release differs from Table 1 and torchvision in one place: its conv10 has
``pad: 1`` (a 1x1 kernel, so the border outputs are just the bias), making conv10 15x15
instead of 13x13 and the model 861 M MACs at 227 rather than 833 M. That is where the often
quoted 861 M comes from. :func:`squeezenet1_0` follows Table 1 and torchvision (whose
weights are the ones in circulation); :func:`squeezenet1_0_caffe` reproduces the release.
"""

from __future__ import annotations

from ..graph import Model
from ..layers import Activation, Concat, Conv2d, GlobalAvgPool, MaxPool
from ._common import check_common

__all__ = ["squeezenet1_0", "squeezenet1_0_caffe", "squeezenet1_1"]

# Fire modules 2-9: (squeeze, expand1x1, expand3x3) channels, Table 1 / torchvision.
FIRE_CHANNELS = {
    2: (16, 64, 64),
    3: (16, 64, 64),
    4: (32, 128, 128),
    5: (32, 128, 128),
    6: (48, 192, 192),
    7: (48, 192, 192),
    8: (64, 256, 256),
    9: (64, 256, 256),
}




def _conv_relu(m: Model, name: str, out_channels: int, kernel: int = 1, stride: int = 1,
               padding: int = 0, relu_name: str | None = None, inputs=None) -> str:
    """Convolution followed by ReLU; the ReLU is named ``relu_<name>`` unless given."""
    m.add(name, Conv2d(out_channels, kernel=kernel, stride=stride, padding=padding),
          inputs=inputs)
    return m.add(relu_name or f"relu_{name}", Activation("relu"))


def _pool(m: Model, name: str) -> str:
    # Caffe rounds pooling output sizes up; torchvision copies that with ceil_mode, and it is
    # what makes 111 -> 55 -> 27 -> 13 in Table 1.
    return m.add(name, MaxPool(kernel=3, stride=2, ceil_mode=True))


def _fire(m: Model, index: int) -> str:
    """Fire module ``index`` on the last node: squeeze, then expand 1x1 and 3x3 concatenated."""
    squeeze, e1, e3 = FIRE_CHANNELS[index]
    p = f"fire{index}"
    s = _conv_relu(m, f"{p}/squeeze1x1", squeeze, relu_name=f"{p}/relu_squeeze1x1")
    a = _conv_relu(m, f"{p}/expand1x1", e1, relu_name=f"{p}/relu_expand1x1", inputs=s)
    b = _conv_relu(m, f"{p}/expand3x3", e3, kernel=3, padding=1,
                   relu_name=f"{p}/relu_expand3x3", inputs=s)
    return m.add(f"{p}/concat", Concat(), inputs=[a, b])


def _classifier(m: Model, num_classes: int, padding: int = 0) -> str:
    """conv10 (1x1 to the classes) + ReLU, then the global average ``pool10``."""
    _conv_relu(m, "conv10", num_classes, padding=padding)
    return m.add("pool10", GlobalAvgPool())


def _squeezenet1_0(name: str, resolution: int, num_classes: int, conv10_padding: int) -> Model:
    check_common(resolution, num_classes)
    m = Model(name, (resolution, resolution, 3))
    _conv_relu(m, "conv1", 96, kernel=7, stride=2)
    _pool(m, "pool1")
    for i in (2, 3, 4):
        _fire(m, i)
    _pool(m, "pool4")
    for i in (5, 6, 7, 8):
        _fire(m, i)
    _pool(m, "pool8")
    _fire(m, 9)
    _classifier(m, num_classes, padding=conv10_padding)
    return m


def squeezenet1_0(resolution: int = 227, num_classes: int = 1000) -> Model:
    """SqueezeNet 1.0 (Iandola et al. 2016, Table 1; torchvision ``squeezenet1_0``).

    conv1 (96, 7x7/2, no padding), pool1, fire2-4, pool4, fire5-8, pool8, fire9, conv10,
    pool10. At 227 every layer has Table 1's output size.

    Parameters
    ----------
    resolution : int
        Input height and width, at least 32. The paper and the Caffe release use 227.
    num_classes : int
        Output channels of conv10.

    Returns
    -------
    Model
        Named ``"squeezenet"``, without weights. At 1000 classes: 1,248,424 parameters;
        833 M MACs at 227, 819 M at 224 (torchvision's published figure).

    Raises
    ------
    ValueError
        If ``resolution`` or ``num_classes`` is outside the values above.
    """
    return _squeezenet1_0("squeezenet", resolution, num_classes, conv10_padding=0)


def squeezenet1_0_caffe(resolution: int = 227, num_classes: int = 1000) -> Model:
    """SqueezeNet 1.0 exactly as the authors' Caffe release, conv10 padded by 1.

    Identical to :func:`squeezenet1_0` but for conv10's ``pad: 1``
    (``SqueezeNet_v1.0/deploy.prototxt``), so conv10 is 15x15 at 227. Not in the zoo registry;
    it exists to run the release's weights bit-for-bit and to account for its 861 M MACs.

    Parameters
    ----------
    resolution : int
        Input height and width, at least 32.
    num_classes : int
        Output channels of conv10.

    Returns
    -------
    Model
        Named ``"squeezenet_caffe"``, without weights. At 227 and 1000 classes: 1,248,424
        parameters, 861 M MACs.

    Raises
    ------
    ValueError
        If ``resolution`` or ``num_classes`` is outside the values above.
    """
    return _squeezenet1_0("squeezenet_caffe", resolution, num_classes, conv10_padding=1)


def squeezenet1_1(resolution: int = 224, num_classes: int = 1000) -> Model:
    """SqueezeNet 1.1 (the authors' v1.1 release; torchvision ``squeezenet1_1``).

    conv1 (64, 3x3/2, no padding), pool1, fire2-3, pool3, fire4-5, pool5, fire6-9, conv10,
    pool10. Same fire modules as 1.0, but pooled earlier, so most run on smaller maps.

    Parameters
    ----------
    resolution : int
        Input height and width, at least 32.
    num_classes : int
        Output channels of conv10.

    Returns
    -------
    Model
        Named ``"squeezenet1_1"``, without weights. At 1000 classes: 1,235,496 parameters;
        349 M MACs at 224.

    Raises
    ------
    ValueError
        If ``resolution`` or ``num_classes`` is outside the values above.
    """
    check_common(resolution, num_classes)
    m = Model("squeezenet1_1", (resolution, resolution, 3))
    _conv_relu(m, "conv1", 64, kernel=3, stride=2)
    _pool(m, "pool1")
    for i in (2, 3):
        _fire(m, i)
    _pool(m, "pool3")
    for i in (4, 5):
        _fire(m, i)
    _pool(m, "pool5")
    for i in (6, 7, 8, 9):
        _fire(m, i)
    _classifier(m, num_classes)
    return m
