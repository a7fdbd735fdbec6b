"""The assistant as llama-index components, for a llama-index user's own pipeline.

    from llama_index.core.query_engine import CitationQueryEngine
    from rag.integrations.llama_index import PaperQueryEngine, PaperRetriever

    with rag.open() as assistant:
        retriever = PaperRetriever(assistant, k=5)          # a llama-index BaseRetriever
        nodes = retriever.retrieve("vision transformers with convolutions")
        engine = CitationQueryEngine(retriever, llm=my_llm)  # llama-index writes the answer
        engine = PaperQueryEngine(assistant)                 # or the assistant does
        response = engine.query("Which papers bridge CNNs and ViTs?")
        response.source_nodes                                # the cited papers

`PaperRetriever` returns one `NodeWithScore` per paper, best first: the node's text is the
paper's title and abstract, its id the paper id, its metadata `paper_id`, `title`, `year`,
`score` (the fused retrieval score, also the node's score), `authors`, `url`, `source`.
Score and id stay out of what an LLM is shown (`excluded_llm_metadata_keys`).

`PaperQueryEngine` answers with the assistant's own pipeline (extractive or LLM answerer,
abstention, citation checks): `Response.response` is `Answer.text` with its `[n]` markers,
`Response.source_nodes` one node per citation in marker order (text: the quoted sentences,
metadata as above plus `n` and `quote`), `Response.metadata` the whole `Answer.to_dict()`.
An abstention has no source nodes.

Nothing here is on the assistant's own path (the CLI, UI and eval call `rag.Assistant`);
llama-index's global `Settings` is never read: pass `llm=` to its engines yourself.
"""

from __future__ import annotations

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.assistant import Assistant
from rag.models import Answer, Filters, Paper

_HIDDEN_FROM_LLM = ["paper_id", "score", "url", "source", "n", "quote"]


def paper_node(paper: Paper, score: float | None, text: str | None = None, **extra) -> NodeWithScore:
    """One paper as a scored llama-index node (module docstring: text and metadata)."""
    metadata = {"paper_id": paper.paper_id, "title": paper.title, "year": paper.year, "score": score,
                "authors": paper.authors, "url": paper.url, "source": paper.source, **extra}
    node = TextNode(id_=paper.paper_id, text=text if text is not None else f"{paper.title}\n\n{paper.abstract}",
                    metadata=metadata, excluded_llm_metadata_keys=_HIDDEN_FROM_LLM,
                    excluded_embed_metadata_keys=_HIDDEN_FROM_LLM)
    return NodeWithScore(node=node, score=score)


class PaperRetriever(BaseRetriever):
    """The assistant's hybrid retrieval as a llama-index retriever: one node per paper."""

    def __init__(self, assistant: Assistant, k: int = 10, filters: Filters | None = None, **kwargs):
        super().__init__(**kwargs)
        self.assistant, self.k, self.filters = assistant, k, filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        found = self.assistant.retrieve(query_bundle.query_str, k=self.k, filters=self.filters)
        return [paper_node(s.paper, s.score) for s in found]


def response_of(answer: Answer) -> Response:
    """An `Answer` as a llama-index `Response` whose source nodes are its citations."""
    papers = {s.paper_id: s for s in answer.sources}
    nodes = []
    for c in sorted(answer.citations, key=lambda c: c.n):
        source = papers.get(c.paper_id)
        paper = source.paper if source is not None else c.title_only()
        nodes.append(paper_node(paper, source.score if source is not None else None, text=c.quote,
                                n=c.n, quote=c.quote))
    return Response(response=answer.text, source_nodes=nodes, metadata=answer.to_dict())


class PaperQueryEngine(BaseQueryEngine):
    """The assistant's grounded answer as a llama-index query engine."""

    def __init__(self, assistant: Assistant, filters: Filters | None = None, callback_manager=None, **options):
        super().__init__(callback_manager)
        self.assistant, self.filters, self.options = assistant, filters, options

    def _query(self, query_bundle: QueryBundle) -> Response:
        return response_of(self.assistant.answer(query_bundle.query_str, filters=self.filters, **self.options))

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return self._query(query_bundle)  # the pipeline is synchronous; llama-index's async API still works

    def _get_prompt_modules(self) -> dict:
        return {}


__all__ = ["PaperQueryEngine", "PaperRetriever", "paper_node", "response_of"]
