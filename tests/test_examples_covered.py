"""Every example in examples/ is run by the test suite: each script (and the
deployment guide's directory) must be named by some test module, so a new
example cannot be added without a test that runs it. A module whose name
starts with "_" (``examples/_demo_support.py``) is shared plumbing the
examples import, not an example: the tests that run them cover it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _test_sources() -> str:
    me = Path(__file__).resolve()
    return "\n".join(p.read_text() for p in sorted((ROOT / "tests").rglob("test_*.py")) if p.resolve() != me)


def test_every_example_is_named_by_a_test() -> None:
    sources = _test_sources()
    scripts = sorted(p for p in EXAMPLES.rglob("*.py") if not p.name.startswith("_"))
    assert scripts, "no examples found"
    missing = [str(p.relative_to(ROOT)) for p in scripts if f'"{p.name}"' not in sources]
    assert not missing, f"examples no test runs (name them as a string literal in a test): {missing}"


def test_every_example_directory_is_named_by_a_test() -> None:
    sources = _test_sources()
    missing = [
        str(d.relative_to(ROOT))
        for d in sorted(EXAMPLES.iterdir())
        if d.is_dir() and d.name != "__pycache__" and f'"{d.name}"' not in sources
    ]
    assert not missing, f"example directories no test covers: {missing}"
