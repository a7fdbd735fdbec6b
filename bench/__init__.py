"""Benchmarks of the assistant: speed and memory against the hardware floor, and the scale path.

- `python -m bench.run`: index build, no-op re-ingest, warm and cold latency, peak memory and
  embedding backends on the bundled corpus; writes bench/results.md and bench/results.json.
- `python -m bench.synth`: a seeded synthetic corpus recombined from the real abstracts.
- `python -m bench.scale`: that corpus loaded into a real Chroma server at growing sizes.

Nothing here is imported by `rag`; the benchmarks drive the public API and the CLI as a user
would, handing in their own embedder where a measurement needs one.
"""
