"""`python -m rag.export_onnx [MODEL ...]`: export the packaged models to ONNX now (`make setup`
does it), so the first `rag ui` or `rag ask` does not wait for it. Its own module so that
rag.onnx_model (imported by rag.embedding) does not import rag.embedding back."""

from __future__ import annotations

from pathlib import Path

from rag.errors import ConfigError
from rag.onnx_model import export, export_dir


def main(argv: list[str] | None = None) -> int:
    """Export the named models (default: RAG_EMBED_MODEL's) to ONNX."""
    import argparse
    import sys

    from rag.embedding import model_path, model_slug
    from rag.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m rag.export_onnx", description=main.__doc__)
    parser.add_argument("models", nargs="*", help="models to export (default: RAG_EMBED_MODEL's)")
    args = parser.parse_args(argv)
    settings = Settings()
    for model in args.models or [settings.embed_model]:
        try:
            out = export(Path(model_path(model, settings.model_cache_dir)),
                         export_dir(model_slug(model), settings.model_cache_dir))
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{model}: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
