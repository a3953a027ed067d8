"""What the Python runtime says when the app cannot be loaded: the file:line
in the app and the traceback's last frame there (runtimes/python)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "runtimes" / "python"))
import ignite_runtime


def _error(tmp_path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (tmp_path / "app" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "app" / name).write_text(text)
    (tmp_path / "deps").mkdir(exist_ok=True)
    modules = set(sys.modules)
    path = list(sys.path)
    try:
        ignite_runtime.load(str(tmp_path), "acme/app", "acme", {})
    except Exception as exc:
        return ignite_runtime.load_error(exc, str(tmp_path))
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            del sys.modules[name]
    raise AssertionError("the app loaded")


@pytest.fixture(autouse=True)
def _keep_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path.cwd())


def test_a_syntax_error_in_an_imported_module(tmp_path):
    message = _error(
        tmp_path,
        {
            "handler.py": "from lib import util\n\ndef handler(p, c):\n    return 1\n",
            "lib/__init__.py": "",
            "lib/util.py": "x = 1\n\ndef f(:\n    pass\n",
        },
    )
    assert message.splitlines() == [
        "lib/util.py:3: SyntaxError: invalid syntax",
        '  File "lib/util.py", line 3',
        "    def f(:",
    ]


def test_a_missing_import_names_the_frame_that_imports_it(tmp_path):
    message = _error(
        tmp_path,
        {
            "handler.py": "import helpers\n\ndef handler(p, c):\n    return 1\n",
            "helpers.py": "import json\nimport no_such_module_anywhere\n",
        },
    )
    assert message.splitlines() == [
        "helpers.py:2: ModuleNotFoundError: No module named 'no_such_module_anywhere'",
        '  File "helpers.py", line 2, in <module>',
        "    import no_such_module_anywhere",
    ]


def test_a_handler_that_is_no_function(tmp_path):
    message = _error(tmp_path, {"handler.py": "handler = 3\n"})
    assert message == "LookupError: handler.py defines no function named 'handler'"
