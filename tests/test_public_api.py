from __future__ import annotations

import importlib
import types

import pytest

import runtime

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("package", ["runtime", "actors", "runtime.protocols", "runtime.testing"])
def test_all_names_exactly_the_public_names(package):
    """Each package's __all__ lists every public name it has, and each name exists."""
    module = importlib.import_module(package)
    names = set(vars(module)) | set(getattr(module, "__all__", ()))
    public = {
        name
        for name in names
        if not name.startswith("_")
        and not isinstance(getattr(module, name), types.ModuleType)
        and name != "annotations"
    }
    assert set(module.__all__) == public
    assert all(getattr(module, name) is not None for name in module.__all__)
    assert len(module.__all__) == len(set(module.__all__))


def test_errors_share_one_root():
    """Every error the runtime raises is a CallboardError."""
    errors = [getattr(runtime, n) for n in runtime.__all__ if n.endswith("Error")]
    assert len(errors) >= 9
    assert all(issubclass(e, runtime.CallboardError) for e in errors)
