"""The verifier is what a court installs: it must import nothing else of the project."""

import pkgutil
import subprocess
import sys

import verifier

PROJECT_PACKAGES = ("notary", "anchors", "chaincode", "hub", "devices", "network", "bidtrace")


def test_verifier_imports_no_other_project_package() -> None:
    modules = [f"verifier.{m.name}" for m in pkgutil.iter_modules(verifier.__path__)]
    assert "verifier.extract" in modules and "verifier.fabric" in modules
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({PROJECT_PACKAGES!r})))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]", f"verifier pulled in: {run.stdout.strip()}"
