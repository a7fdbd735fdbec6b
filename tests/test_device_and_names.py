"""One clear line instead of a traceback (issue 30.6): an embedding device that is not a
device name, or that this machine does not have, and upload names that start with a dot."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from rag.embedding import Embedder, resolve_device
from rag.errors import ConfigError
from rag.settings import Settings, explain
from rag.sources import checked_name


@pytest.mark.parametrize("device", ["gpu", "cuda0", "cuda:x", "tpu", ""])
def test_a_device_name_is_checked_with_the_settings(device):
    with pytest.raises(ValidationError) as bad:
        Settings(embed_device=device)
    line = explain(bad.value)
    assert "embed_device" in line and "auto, cpu, cuda, cuda:N or mps" in line and "\n" not in line


def test_normal_device_names_are_kept():
    assert [Settings(embed_device=d).embed_device for d in ("auto", "CPU", "cuda:1", "mps")] == \
        ["auto", "cpu", "cuda:1", "mps"]


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a ninth GPU")
def test_a_cuda_device_this_machine_lacks_is_one_line():
    """It was a 68-line traceback from torch when the model loaded."""
    with pytest.raises(ConfigError, match=r"RAG_EMBED_DEVICE=cuda:8: no such CUDA GPU here") as err:
        resolve_device("cuda:8")
    assert "\n" not in str(err.value)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="RAG_EMBED_DEVICE=cuda: no such CUDA GPU"):
            _ = Embedder("all-MiniLM-L6-v2", device="cuda").model


@pytest.mark.parametrize("name", [".hidden.bib", ".bib", "..", ".", "dir/.x.jsonl", " .x.ris"])
def test_upload_names_starting_with_a_dot_are_refused_in_one_line(name):
    with pytest.raises(ConfigError) as err:
        checked_name(name)
    assert "\n" not in str(err.value) and ("starts with a dot" in str(err.value) or "not a usable" in str(err.value))
