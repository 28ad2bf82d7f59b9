from __future__ import annotations

import importlib
import importlib.metadata
import re
import types
from pathlib import Path

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


def test_every_error_of_the_readme_tree_is_exported():
    """Each error the README's error tree names can be imported from runtime."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    tree = readme.split("Every error is a `runtime.CallboardError`:", 1)[1].split("```")[1]
    names = set(re.findall(r"\b([A-Z][A-Za-z]+Error)\b", tree))
    assert len(names) >= 14
    assert sorted(n for n in names if n not in runtime.__all__) == []


def test_the_version_is_one_string():
    """runtime.__version__ is the installed package's version."""
    assert runtime.__version__ == importlib.metadata.version("callboard")
