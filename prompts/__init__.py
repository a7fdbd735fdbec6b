"""The LLM answerer's prompts, one Markdown file each, shipped as package data.

Nothing to import here: `rag.prompts` reads the files through importlib.resources, so an
installed copy finds its own prompts whatever the working directory.
"""
