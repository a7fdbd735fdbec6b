"""Adapters that let other frameworks use the assistant: `rag.integrations.llama_index`."""
