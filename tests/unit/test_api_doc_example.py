"""docs/api.md's "Testing your handlers in memory" example, run as it is written there."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_in_memory_testing_example_of_api_md_runs():
    text = DOC.read_text()
    section = text[text.index("## Testing your handlers in memory"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {"__name__": "api_md_example"}
    exec(compile(code, str(DOC), "exec"), namespace)
    tests = [name for name in namespace if name.startswith("test_")]
    assert tests == ["test_hello", "test_only_admins_reset"]
    for name in tests:
        namespace[name]()
