"""The exchange ids ccxt knows (``ccxt.exchanges``), without importing ccxt.

Importing ccxt loads its ~100 exchange classes: 90 MB and 0.4 s of a control plane that only wants their names
(4-5 s where bytecode is not cached), and ``slsbot up`` and ``slsbot operator`` want them before their first pass.
ccxt declares the list as a literal in its package's ``__init__.py``; it is read from there with ``ast``, and
ccxt is imported only if that literal is ever not found. A unit test checks both give the same ids.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def ccxt_exchange_ids() -> frozenset[str] | None:
    """``frozenset(ccxt.exchanges)``; None when ccxt is not installed."""
    spec = importlib.util.find_spec("ccxt")
    if spec is None or spec.origin is None:
        return None
    declared = declared_exchanges(Path(spec.origin))
    if declared is not None:
        return declared
    log.info("ccxt's exchange list is not a literal in %s; importing ccxt for it", spec.origin)
    import ccxt

    return frozenset(ccxt.exchanges)


def declared_exchanges(init_file: Path) -> frozenset[str] | None:
    """The string literals of the module-level ``exchanges = [...]`` in ``init_file``; None if there is none."""
    try:
        tree = ast.parse(init_file.read_bytes(), filename=str(init_file))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["exchanges"]
            and isinstance(node.value, ast.List)
            and node.value.elts
            and all(isinstance(item, ast.Constant) and isinstance(item.value, str) for item in node.value.elts)
        ):
            return frozenset(item.value for item in node.value.elts)  # type: ignore[attr-defined]
    return None
