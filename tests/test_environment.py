"""The environment volsam installs must not hold packages that break here (see ../shared/FACTS.md)."""

import importlib.util


def test_no_torchvision_or_timm_installed():
    # the registry's torchvision wheels are CUDA builds whose import fails with the CPU torch, and once one is
    # installed every transformers image processor that imports it breaks; timm imports torchvision
    assert importlib.util.find_spec("torchvision") is None
    assert importlib.util.find_spec("timm") is None
