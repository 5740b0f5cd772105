"""One import package: the folders install as ``trajrec.*``, nothing else lands in site-packages, and no module
is importable under two names."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

import trajrec

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("recorder", "replay", "envs", "tui")


def _python(code: str, *, python: str = sys.executable, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], cwd=cwd or tempfile.gettempdir(), capture_output=True, text=True,
                          timeout=120)


def test_public_surface() -> None:
    from trajrec import Recorder, TrajrecError, open_episode, open_run  # noqa: F401

    assert set(trajrec.__all__) >= {"Recorder", "open_episode", "open_run", "Run", "TrajrecError", "__version__"}
    for name in trajrec.__all__:
        assert getattr(trajrec, name) is not None
    with pytest.raises(AttributeError, match="module 'trajrec' has no attribute 'nope'"):
        trajrec.nope  # noqa: B018


def test_layers_live_under_trajrec() -> None:
    import trajrec.envs
    import trajrec.recorder
    import trajrec.replay
    import trajrec.tui

    for name in LAYERS:
        module = sys.modules[f"trajrec.{name}"]
        assert Path(module.__file__).parent == ROOT / name


def test_no_module_is_loaded_under_two_names() -> None:
    # In this very test process (doctests included): no top-level twin of a layer was ever imported.
    assert not [m for m in sys.modules if m.split(".")[0] in LAYERS]


def test_layers_are_not_importable_by_their_folder_names() -> None:
    result = _python("import importlib.util as u; print([n for n in ('recorder','replay','envs','tui') "
                     "if u.find_spec(n)])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_python_m_trajrec_in_a_folder_with_its_own_envs_package(tmp_path: Path) -> None:
    # A user's project with an `envs` package of its own must not shadow trajrec's.
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "__init__.py").write_text("raise SystemExit('the user envs package was imported')\n")
    result = subprocess.run([sys.executable, "-m", "trajrec", "envs"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "trajrec/Shell-v0" in result.stdout


@pytest.mark.heavy
def test_wheel_installs_only_trajrec(tmp_path: Path) -> None:
    """Build the wheel, install it in a fresh venv: only ``trajrec`` is added to site-packages."""
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist),
                            str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("trajrec-*.whl"))
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"trajrec"}
    # The venv sees this interpreter's packages (gymnasium, numpy, ...) but installs trajrec itself. When this
    # interpreter is itself a venv's, --system-site-packages would show the base interpreter's packages, not these:
    # a .pth file lists this one's site folders instead (an editable trajrec there is not seen: a .pth inside a
    # folder a .pth added is not read).
    import site

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    (_purelib(py) / "_outer_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    before = set(os.listdir(_purelib(py)))
    inst = subprocess.run([py, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], capture_output=True,
                          text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]
    added = set(os.listdir(_purelib(py))) - before
    assert {a for a in added if not a.endswith(".dist-info")} == {"trajrec"}
    code = ("import trajrec.recorder, trajrec.replay, trajrec.envs, trajrec.tui, trajrec.cli, trajrec\n"
            "assert trajrec.recorder.__file__.startswith(%r), trajrec.recorder.__file__\n"
            "import importlib\n"
            "for n in ('recorder', 'envs', 'replay', 'tui'):\n"
            "    try:\n        importlib.import_module(n)\n    except ImportError:\n        pass\n"
            "    else:\n        raise SystemExit(n + ' is importable')\n"
            "print('ok')") % str(_purelib(py))
    result = _python(code, python=py)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _purelib(python: str) -> Path:
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())



def test_editable_install_maps_only_trajrec() -> None:
    """An editable install (``pip install -e .``, how CI installs) adds a finder that maps ``trajrec.*`` only."""
    import importlib.metadata as md

    files = [str(f) for f in (md.distribution("trajrec").files or [])]
    finders = [f for f in files if f.startswith("__editable__") and f.endswith("_finder.py")]
    if not finders:
        pytest.skip("trajrec is not installed in editable mode here (a wheel install: see the heavy wheel test)")
    finder = sys.modules.get(Path(finders[0]).stem)
    assert finder is not None, f"{finders[0]} is installed but not loaded"
    assert set(finder.MAPPING) == {"trajrec", *(f"trajrec.{name}" for name in LAYERS)}
    assert {Path(p).name for p in finder.MAPPING.values()} == {"trajrec", *LAYERS}


def test_pyproject_lists_every_package() -> None:
    """Packages are listed by hand (the folders map onto trajrec.*): a new sub-package must be listed, or the
    wheel ships without it."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"trajrec"}
    for top, name in (("trajrec", "trajrec"), *((layer, f"trajrec.{layer}") for layer in LAYERS)):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join((name, *rel.parts)))
    assert listed == found
