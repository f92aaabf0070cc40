"""fusion.registry.Registry (lazy entries, prefixes, names or instances, errors) and the one
"did you mean" helper, kg.hints."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fusion.registry import Registry, UnknownNameError
from kg.hints import close_matches, did_you_mean

PLUGIN = textwrap.dedent(
    """
    class Base:
        def __init__(self, size=1):
            self.size = size

    class Small(Base):
        pass

    class Needs:
        def __init__(self, where, size=1):
            self.where, self.size = where, size
    """
)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A module ``kgf_test_plugin`` on sys.path, not imported yet."""
    (tmp_path / "kgf_test_plugin.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "kgf_test_plugin", raising=False)
    yield "kgf_test_plugin"
    sys.modules.pop("kgf_test_plugin", None)


def test_lazy_entry_imports_on_first_lookup(plugin):
    reg: Registry = Registry("widget")
    reg.register_lazy("small", f"{plugin}:Small")
    assert reg.names() == ["small"] and "small" in reg and len(reg) == 1
    assert plugin not in sys.modules  # listed, not imported
    widget = reg.get("small", size=3)
    assert plugin in sys.modules and widget.size == 3
    cls = sys.modules[plugin].Small
    assert reg.get_class("small") is cls and reg["small"] is cls and cls.name == "small"
    reg.register("small", cls)  # the class behind the lazy entry: accepted
    assert reg.targets() == {"small": f"{plugin}:Small"}


def test_lazy_entry_that_cannot_be_imported_names_itself():
    reg: Registry = Registry("widget")
    reg.register_lazy("ghost", "no_such_module_kgf:Ghost")
    with pytest.raises(ImportError, match=r"widget 'ghost' is registered as 'no_such_module_kgf"):
        reg.get("ghost")
    with pytest.raises(ValueError, match="package.module:ClassName"):
        reg.register_lazy("bad", "no colon here")


def test_taken_names_lazy_or_not(plugin):
    reg: Registry = Registry("widget", taken_error=TypeError)
    reg.register_lazy("small", f"{plugin}:Small")

    class Small:
        pass

    with pytest.raises(TypeError, match=f"already taken by {plugin}:Small"):
        reg.register("small", Small)
    with pytest.raises(TypeError, match="already taken"):
        reg.register_lazy("small", f"{plugin}:Base")
    with pytest.raises(ValueError, match="non-empty"):
        reg.register("  ", Small)


def test_reregistering_the_same_class_is_allowed():
    """A notebook cell run twice defines a new class object of the same name and module."""
    reg: Registry = Registry("widget")
    first = type("Cell", (), {"__module__": "__main__", "__qualname__": "Cell"})
    second = type("Cell", (), {"__module__": "__main__", "__qualname__": "Cell"})
    reg.register("cell")(first)
    reg.register("cell")(second)
    assert reg.get_class("cell") is second


def test_names_instances_and_classes_resolve(plugin):
    import importlib

    module = importlib.import_module(plugin)
    reg: Registry = Registry("widget", base=module.Base)
    reg.register("small", module.Small)
    built = reg.get("Small ")  # stripped and lower-cased when not found as given
    assert isinstance(built, module.Small)
    assert reg.get(built, size=9) is built  # an instance is returned as it is
    assert reg.get_class(built) is module.Small
    assert reg.get(module.Base, size=2).size == 2  # a subclass of base is built
    with pytest.raises(UnknownNameError):
        reg.get(object())
    unbased: Registry = Registry("widget")
    unbased.register("small", module.Small)
    assert unbased.get(built) is built  # without base: instances of registered classes


def test_prefix_entries(plugin):
    reg: Registry = Registry("widget")
    reg.register_prefix("at", f"{plugin}:Needs", usage="at:<place>")
    widget = reg.get("AT:/some/where", size=4)
    assert (widget.where, widget.size) == ("/some/where", 4)
    assert reg.names() == [] and "at:x" not in reg
    with pytest.raises(UnknownNameError, match=r"registered: , or at:<place>"):
        reg.get("nowhere")


def test_unknown_names_one_message_and_error_type():
    class MyError(ValueError):
        pass

    reg: Registry = Registry("gadget", unknown_error=MyError)
    reg.register("gated", type("G", (), {}))
    reg.register("mean", type("M", (), {}))
    with pytest.raises(MyError) as err:
        reg.get("GATD")
    assert (
        str(err.value) == "unknown gadget 'GATD' (did you mean 'gated'?); registered: gated, mean"
    )
    with pytest.raises(MyError, match=r"unknown gadget 42; registered: gated, mean"):
        reg.get_class(42)
    assert reg.suggest("maen") == " (did you mean 'mean'?)" and reg.suggest("zzz") == ""


def test_hints():
    assert did_you_mean("lnk", ["link", "node"]) == "; did you mean 'link'?"
    assert did_you_mean("gatd", ["gated"], paren=True) == " (did you mean 'gated'?)"
    assert did_you_mean("x:p1", ["x:p2", "x:p11", "y"], n=3, quote=False) == (
        "; did you mean x:p11, x:p2?"
    )
    assert did_you_mean(("a", "r", "b"), [("a", "r", "c")], paren=True, quote=False) == (
        " (did you mean ('a', 'r', 'c')?)"
    )
    assert did_you_mean("lr", {"lr": "trainer.lr"}, show={"lr": "trainer.lr"}.get) == (
        "; did you mean 'trainer.lr'?"
    )
    assert did_you_mean("zzz", ["link"]) == "" and close_matches("zzz", []) == []
    assert close_matches("mena", ["mean", "men", "x"], n=2, cutoff=0.5) == ["men", "mean"]


def test_importing_encoders_imports_no_encoder_module():
    code = (
        "import sys, fusion.encoders as e; names = e.list_encoders(); "
        "print(sorted(m for m in sys.modules if m.startswith('fusion.encoders.')), names); "
        "e.MiniLMEncoder; print('fusion.encoders.minilm' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith("['fusion.encoders.base'] [") and "'minilm'" in out[0]
    assert out[1] == "True"
