"""Embedding models as a setting: names, per-model defaults, the window bound on chunks, and
an embedder that changes no process state except where it is asked to."""

from __future__ import annotations

import os

import numpy as np
import pytest
from pydantic import ValidationError

from rag.embedding import Embedder, TokenCounter, model_path, model_slug, resolve_device
from rag.errors import ConfigError
from rag.models_registry import MODELS, spec_for, window_of
from rag.settings import Settings


def test_models_are_known_by_name_with_or_without_owner():
    assert spec_for("all-MiniLM-L6-v2").window == 256
    assert spec_for("sentence-transformers/all-mpnet-base-v2").window == 384
    assert spec_for("sentence-transformers/all-mpnet-base-v2").dimension == 768
    assert spec_for("/some/dir/model") is None
    assert model_slug("sentence-transformers/all-mpnet-base-v2") == "all-mpnet-base-v2"


def test_a_local_directory_gives_its_own_window(tmp_path):
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    assert window_of(str(tmp_path)) == 128
    s = Settings(embed_model=str(tmp_path), data_dir=tmp_path)
    assert s.chunk_size == 126
    with pytest.raises(ValidationError, match="window of 128"):
        Settings(embed_model=str(tmp_path), data_dir=tmp_path, chunk_size=200)


def test_minilm_defaults_are_the_measured_ones(tmp_path):
    s = Settings(data_dir=tmp_path, embed_model="all-MiniLM-L6-v2")
    assert (s.chunk_size, s.fusion_weight, s.relative_cutoff, s.feedback_papers) == (254, 0.5, 0.30, 3)


def test_unset_fields_follow_the_model_and_set_ones_stay(tmp_path):
    mpnet = Settings(data_dir=tmp_path, embed_model="all-mpnet-base-v2")
    assert (mpnet.chunk_size, mpnet.fusion_weight) == (254, MODELS["all-mpnet-base-v2"].defaults["fusion_weight"])
    back = mpnet.with_overrides({"embed_model": "all-MiniLM-L6-v2"})
    assert (back.chunk_size, back.fusion_weight) == (254, 0.5)  # the new model's values, not mpnet's
    chosen = Settings(data_dir=tmp_path, embed_model="all-mpnet-base-v2", fusion_weight=0.6, chunk_size=300)
    kept = chosen.with_overrides({"max_papers": 5})
    assert (kept.fusion_weight, kept.chunk_size) == (0.6, 300)


def test_the_chunk_bound_is_the_models_window(tmp_path):
    assert Settings(data_dir=tmp_path, embed_model="all-mpnet-base-v2", chunk_size=382).chunk_size == 382
    with pytest.raises(ValidationError, match="window of 256"):
        Settings(data_dir=tmp_path, embed_model="all-MiniLM-L6-v2", chunk_size=255)
    with pytest.raises(ValidationError, match="window of 384"):
        Settings(data_dir=tmp_path, embed_model="all-mpnet-base-v2", chunk_size=383)


def test_environment_sets_the_model_and_its_fusion_weight(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_EMBED_MODEL", "all-mpnet-base-v2")
    monkeypatch.setenv("RAG_FUSION_WEIGHT", "0.9")
    s = Settings(data_dir=tmp_path)
    assert (s.embed_model, s.fusion_weight, s.chunk_size) == ("all-mpnet-base-v2", 0.9, 254)


def test_an_unknown_name_is_never_downloaded(tmp_path):
    with pytest.raises(ConfigError, match="never downloaded"):
        model_path("someone/some-model", tmp_path)
    assert model_path("someone/some-model", tmp_path, allow_download=True) == "someone/some-model"


def test_the_token_counter_knows_the_window():
    assert TokenCounter("all-MiniLM-L6-v2").window == 256


def test_building_an_embedder_writes_no_environment(tmp_path):
    before = dict(os.environ)
    Embedder("all-MiniLM-L6-v2", device="cpu")
    assert dict(os.environ) == before


def test_query_threads_are_set_where_the_embedder_is_built(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        Embedder.from_settings(Settings(data_dir=tmp_path, embed_threads=1))
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        Embedder.from_settings(Settings(data_dir=tmp_path, embed_threads=1), for_queries=False)
        assert torch.get_num_threads() == 2  # ingest keeps every core
    finally:
        torch.set_num_threads(before)


def test_auto_device_is_a_real_device():
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") in (expected, "mps")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.slow  # loads the model in worker processes (about a minute)
def test_worker_processes_give_the_same_vectors(tmp_path):
    texts = [f"paper {i} studies graph neural networks for molecule number {i}" for i in range(24)]
    single = Embedder("all-MiniLM-L6-v2", batch_size=8, device="cpu")
    pooled = Embedder.from_settings(Settings(data_dir=tmp_path, embed_processes=2, embed_batch_size=8,
                                             embed_device="cpu", embed_backend="torch"),  # torch's pool
                                    for_queries=False)
    try:
        got = pooled.embed(texts)
        assert pooled._pool is not None and len(pooled._pool["processes"]) == 2
    finally:
        pooled.close()
    assert pooled._pool is None
    np.testing.assert_allclose(got, single.embed(texts), atol=1e-5)


def test_query_threads_get_a_short_openmp_spin_unless_the_user_set_one():
    """libgomp reads GOMP_SPINCOUNT once, when torch loads: set_torch_threads sets it first
    (a long default spin makes every core's worker fight a busy machine), and keeps the user's."""
    import subprocess
    import sys

    script = ("import os, sys; from rag.embedding import set_torch_threads, QUERY_SPINCOUNT; "
              "set_torch_threads(1); import torch; "
              "print(os.environ.get('GOMP_SPINCOUNT'), QUERY_SPINCOUNT, torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    spin, query_spin, threads = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                               text=True, check=True).stdout.split()
    assert (spin, threads) == (query_spin, "1")
    mine = subprocess.run([sys.executable, "-c", script], env={**env, "GOMP_SPINCOUNT": "7"},
                          capture_output=True, text=True, check=True).stdout.split()
    assert mine[0] == "7"
