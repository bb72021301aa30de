"""Every name a retrain module exports resolves (no dead entries in ``__all__``)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "producers.retrain",
    "producers.retrain.actions",
    "producers.retrain.backoff",
    "producers.retrain.build",
    "producers.retrain.config",
    "producers.retrain.dataset",
    "producers.retrain.decision",
    "producers.retrain.errors",
    "producers.retrain.evaluation",
    "producers.retrain.local",
    "producers.retrain.metrics",
    "producers.retrain.secrets",
    "producers.retrain.state",
    "producers.retrain.trainer",
    "producers.retrain.transport",
    "producers.retrain.worker",
]


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    missing = [export for export in module.__all__ if not hasattr(module, export)]
    assert missing == []
