"""A minimal, standard-library-only PEP 517 / PEP 660 build backend for ringgate-client.

Why not setuptools: pip builds in an isolated environment and would download the backend
from PyPI first. This backend lives in the source tree (``backend-path``), so
``pip install ./clients/python`` needs the network only for the runtime dependency.

It packages ``src/ringgate_client`` as a pure-Python wheel, reading every piece of metadata
from the ``[project]`` table of ``pyproject.toml`` (``tomllib`` on Python >= 3.11; a small
parser for the subset of TOML that file uses on 3.10).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ringgate_client"
SRC = ROOT / "src" / PACKAGE


# --------------------------------------------------------------------------- pyproject


def _parse_toml_subset(text: str) -> dict:
    """Tables, ``key = value`` with strings, arrays, inline tables, booleans, integers."""
    data: dict = {}
    table = data
    pending = ""
    for raw_line in text.splitlines():
        line = _strip_comment(raw_line).strip()
        if not pending and not line:
            continue
        if not pending and line.startswith("[") and not line.startswith("[["):
            table = data
            for part in line.strip("[]").split("."):
                table = table.setdefault(part.strip().strip('"'), {})
            continue
        pending = f"{pending} {line}" if pending else line
        key, _, value = pending.partition("=")
        value = value.strip()
        if value.count("[") != value.count("]") or value.count("{") != value.count("}"):
            continue  # a multi-line array or table: keep reading
        pending = ""
        table[key.strip().strip('"')] = _toml_value(value)
    return data


def _strip_comment(line: str) -> str:
    out, in_str = [], False
    for ch in line:
        if ch == '"':
            in_str = not in_str
        if ch == "#" and not in_str:
            break
        out.append(ch)
    return "".join(out)


def _toml_value(value: str):
    # Inline-table keys become quoted dict keys; booleans become Python's.
    value = re.sub(r'([{,]\s*)([A-Za-z0-9_-]+)\s*=', r'\1"\2":', value)
    value = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", value))
    return ast.literal_eval(value)


def _project() -> dict:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - exercised on 3.10
        return _parse_toml_subset(text)["project"]
    return tomllib.loads(text)["project"]


# --------------------------------------------------------------------------- metadata


def _dist_name(project: dict) -> str:
    return re.sub(r"[-_.]+", "_", project["name"]).lower()


def _metadata(project: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    lic = project.get("license")
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    elif isinstance(lic, str):
        lines.append(f"License: {lic}")
    for c in project.get("classifiers", []):
        lines.append(f"Classifier: {c}")
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    for dep in project.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for dep in deps:
            lines.append(f'Requires-Dist: {dep}; extra == "{extra}"')
    body = ""
    readme = project.get("readme")
    if isinstance(readme, str):
        lines.append("Description-Content-Type: text/markdown")
        body = (ROOT / readme).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + body


def _entry_points(project: dict) -> str:
    scripts = project.get("scripts", {})
    if not scripts:
        return ""
    return "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())


def _dist_info_files(project: dict) -> dict[str, bytes]:
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: ringgate_build 0.1.0\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    files = {
        "METADATA": _metadata(project).encode(),
        "WHEEL": wheel.encode(),
        "top_level.txt": f"{PACKAGE}\n".encode(),
        "LICENSE": (ROOT / "LICENSE").read_bytes(),
    }
    eps = _entry_points(project)
    if eps:
        files["entry_points.txt"] = eps.encode()
    return files


# --------------------------------------------------------------------------- wheel writing


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, payload: dict[str, bytes]) -> str:
    project = _project()
    name = _dist_name(project)
    version = project["version"]
    dist_info = f"{name}-{version}.dist-info"
    files = dict(payload)
    for fname, data in _dist_info_files(project).items():
        files[f"{dist_info}/{fname}"] = data
    record = [_record_line(p, d) for p, d in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()

    filename = f"{name}-{version}-py3-none-any.whl"
    path = Path(wheel_directory) / filename
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in files.items():
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return filename


def _package_files() -> dict[str, bytes]:
    out = {}
    for path in sorted(SRC.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed"):
            out[f"{PACKAGE}/{path.relative_to(SRC).as_posix()}"] = path.read_bytes()
    return out


# --------------------------------------------------------------------------- PEP 517 hooks


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project = _project()
    dist_info = f"{_dist_name(project)}-{project['version']}.dist-info"
    target = Path(metadata_directory) / dist_info
    target.mkdir(parents=True, exist_ok=True)
    for fname, data in _dist_info_files(project).items():
        (target / fname).write_bytes(data)
    return dist_info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (str(ROOT / "src") + os.linesep).encode()
    return _write_wheel(wheel_directory, {f"__editable__.{PACKAGE}.pth": pth})


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    filename = f"{base}.tar.gz"
    members: dict[str, bytes] = {"PKG-INFO": _metadata(project).encode()}
    for rel in ("pyproject.toml", "README.md", "LICENSE", "_build/ringgate_build.py"):
        members[rel] = (ROOT / rel).read_bytes()
    for top in ("src", "tests"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                members[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    with tarfile.open(Path(sdist_directory) / filename, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for rel, data in members.items():
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size = len(data)
            info.mtime = int(time.time())
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return filename
