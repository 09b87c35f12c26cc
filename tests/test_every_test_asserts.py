"""Every test function asserts something (a test that cannot fail is a defect).

The rule, checked with ``ast`` over ``tests/**/test_*.py``: a test function (``test*`` at module
level or in a ``Test*`` class) passes when its own body (nested blocks included, nested
functions and lambdas too) holds at least one of

- an ``assert`` statement;
- ``pytest.raises`` / ``pytest.warns`` / ``pytest.deprecated_call`` / ``pytest.fail`` (as a
  ``with`` or a call);
- a call of a function whose name starts with ``assert`` / ``_assert`` / ``check_`` / ``_check_``
  (``np.testing.assert_allclose``, ``pd.testing.assert_frame_equal``, a project helper such as
  ``check_lookahead``), or ends with ``check_env`` (gymnasium's and SB3's environment checkers
  raise on a violation);
- a call of a function defined in the same test module that itself asserts by this rule
  (followed through helpers that call helpers).

Tests whose whole check is "this runs without raising" belong in :data:`ALLOWED` with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

#: ``path::test name`` -> why running without an exception is the whole check.
ALLOWED: dict[str, str] = {}

_PYTEST_CHECKS = {"raises", "warns", "deprecated_call", "fail"}
_PREFIXES = ("assert", "_assert", "check_", "_check_")


def _called_name(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def _direct_check(node: ast.AST) -> bool:
    """True when ``node``'s subtree holds an assertion construct (not counting local helpers)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert):
            return True
        if isinstance(sub, ast.Call):
            name = _called_name(sub)
            f = sub.func
            if (
                isinstance(f, ast.Attribute)
                and isinstance(f.value, ast.Name)
                and f.value.id == "pytest"
                and name in _PYTEST_CHECKS
            ):
                return True
            if name.startswith(_PREFIXES) or name.endswith("check_env"):
                return True
    return False


def _calls(node: ast.AST) -> set[str]:
    return {_called_name(sub) for sub in ast.walk(node) if isinstance(sub, ast.Call)}


def _asserting_helpers(tree: ast.Module) -> set[str]:
    """Module-level functions (and methods) that assert, directly or through each other."""
    funcs: dict[str, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            funcs.setdefault(node.name, node)
    good = {name for name, node in funcs.items() if _direct_check(node)}
    changed = True
    while changed:
        changed = False
        for name, node in funcs.items():
            if name not in good and _calls(node) & good:
                good.add(name)
                changed = True
    return good


def _test_functions(tree: ast.Module):
    for node in tree.body:
        if isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef
        ) and node.name.startswith("test"):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(
                    item, ast.FunctionDef | ast.AsyncFunctionDef
                ) and item.name.startswith("test"):
                    yield f"{node.name}.{item.name}", item


def offenders(root: Path = TESTS) -> list[str]:
    """``path::name`` of every test function that asserts nothing by the rule above."""
    out = []
    for path in sorted(root.rglob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        helpers = _asserting_helpers(tree)
        for name, node in _test_functions(tree):
            key = f"{path.relative_to(root).as_posix()}::{name}"
            if key in ALLOWED:
                continue
            if not (_direct_check(node) or _calls(node) & helpers):
                out.append(key)
    return out


def test_every_test_function_asserts_something() -> None:
    assert offenders() == []


def test_the_allow_list_names_existing_tests_with_a_reason() -> None:
    for key, reason in ALLOWED.items():
        path, name = key.split("::")
        assert (TESTS / path).is_file() and f"def {name.split('.')[-1]}(" in (
            TESTS / path
        ).read_text(), key
        assert reason.strip(), key


def test_the_rule_catches_a_test_without_an_assertion(tmp_path: Path) -> None:
    (tmp_path / "test_planted.py").write_text(
        "import numpy as np\nimport pytest\n\n"
        "def _helper(x):\n    assert x\n\n"
        "def _runs(x):\n    return x + 1\n\n"
        "def test_silent():\n    _runs(1)\n\n"
        "def test_asserts():\n    assert _runs(1) == 2\n\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        int('x')\n\n"
        "def test_numpy():\n    np.testing.assert_array_equal([1], [1])\n\n"
        "def test_through_a_helper():\n    _helper(1)\n\n"
        "class TestGroup:\n    def test_method_silent(self):\n        _runs(2)\n"
    )
    assert offenders(tmp_path) == [
        "test_planted.py::test_silent",
        "test_planted.py::TestGroup.test_method_silent",
    ]
