"""Every exported name resolves: the package's ``__all__`` and each module's."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import detectors
from detectors.registry import DETECTORS

MODULES = sorted(
    info.name for info in pkgutil.iter_modules(detectors.__path__, prefix="detectors.")
)


def test_package_exports_resolve() -> None:
    assert len(set(detectors.__all__)) == len(detectors.__all__)
    for name in detectors.__all__:
        assert getattr(detectors, name) is not None, name


@pytest.mark.parametrize("module_name", MODULES)
def test_module_exports_resolve(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    if module_name.rpartition(".")[2].startswith("_"):
        exported = exported or []
    else:
        assert exported is not None, f"{module_name} has no __all__"
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ has duplicates"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"


def test_every_registered_detector_and_its_params_are_exported() -> None:
    for kind, cls in DETECTORS.items():
        assert getattr(detectors, cls.__name__, None) is cls, kind
        assert getattr(detectors, cls.params_type.__name__, None) is cls.params_type, kind
