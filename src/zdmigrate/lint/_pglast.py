"""Loading pglast's C parser without paying for its AST classes and enums up front.

`import pglast` builds hundreds of enum and AST classes (tens of milliseconds,
more than the rest of a `zdmigrate lint` run over a few files). The linter only
needs `pglast.parser` (its JSON output, the scanner and the splitter), so the
package is imported with `pglast.ast` and `pglast.enums` behind the standard
library's `importlib.util.LazyLoader`: they are real modules that execute on
first attribute access, so code that later uses `pglast.ast` (zdmigrate.steps,
the engine) sees the ordinary package. If pglast was already imported, or
anything about this fails, it falls back to a plain import.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from types import ModuleType

_LAZY_SUBMODULES = ("enums", "ast")


def load_parser() -> ModuleType:
    """The `pglast.parser` extension module."""
    if "pglast" not in sys.modules:
        try:
            _import_with_lazy_submodules()
        except Exception:
            for name in ("pglast", "pglast.parser", "pglast.error",
                         *(f"pglast.{s}" for s in _LAZY_SUBMODULES)):
                sys.modules.pop(name, None)
    import pglast.parser

    return pglast.parser


def _import_with_lazy_submodules() -> None:
    spec = importlib.util.find_spec("pglast")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        raise ImportError("pglast is not a package here")
    package = importlib.util.module_from_spec(spec)
    sys.modules["pglast"] = package
    for sub in _LAZY_SUBMODULES:
        name = f"pglast.{sub}"
        sub_spec = importlib.machinery.PathFinder.find_spec(name, package.__path__)
        if sub_spec is None or sub_spec.loader is None:
            raise ImportError(name)
        sub_spec.loader = importlib.util.LazyLoader(sub_spec.loader)
        module = importlib.util.module_from_spec(sub_spec)
        sys.modules[name] = module
        sub_spec.loader.exec_module(module)
        setattr(package, sub, module)
    # the parser extension does `from . import Error` before the package __init__ ran
    from pglast.error import Error

    package.Error = Error  # type: ignore[attr-defined]
    spec.loader.exec_module(package)
