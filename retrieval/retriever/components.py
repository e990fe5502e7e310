"""Byline's own Haystack components: the query's vectors, the steps between fusion and the reader, and the
step after it.

- `QueryEmbedder`: MiniLM vectors of what retrieval searches for and of the question the reader reads.
- `BoostArticles`: a follow-up question favours the articles the thread's previous answer cited.
- `CollapseSyndicatedCopies`: one story republished by several outlets keeps one slot.
- `SentenceFocuser`: ranks the sentences of the fused chunks and hands the reader short
  windows around the best ones instead of whole chunks (faster, and less page noise).
- `AnswerAssembler`: turns reader spans into merged `Answer`s with article citations.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from typing import NamedTuple

import numpy as np
from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer

from retrieval.answer import Answer, AnswerResult, Citation
from retrieval.index.base import ArticleStore
from retrieval.retriever.answer_types import answer_kind, completed_name, fits

TOKEN = re.compile(r"\w+")
STOPWORDS = frozenset(
    "a an the of to in on for and or is are was were be been by with at from as that this it its what who whom "
    "which when where why how did do does has have had not no their there they he she his her than then".split())


def terms(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOPWORDS]


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(t for t in text.split() if t not in {"a", "an", "the"})


@component
class QueryEmbedder:
    """The retrieval query's vector, and the question's for choosing sentences: a follow-up searches with
    the thread's words too, but its sentences are chosen for the question itself. One encoder call when
    the two are the same (every question not read as a follow-up)."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder

    @component.output_types(embedding=list[float], question_embedding=list[float])
    def run(self, text: str, question: str | None = None) -> dict:
        embedding = self.embedder.run(text=text)["embedding"]
        if question is None or question == text:
            return {"embedding": embedding, "question_embedding": embedding}
        return {"embedding": embedding, "question_embedding": self.embedder.run(text=question)["embedding"]}


@component
class BoostArticles:
    """Multiply the fused score of chunks from `doc_ids` by (1 + `boost`) and re-rank."""

    def __init__(self, boost: float) -> None:
        self.boost = boost

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document], doc_ids: list[str] | None = None) -> dict:
        if not doc_ids or not self.boost:
            return {"documents": documents}
        favoured = set(doc_ids)
        boosted = [dataclasses.replace(d, score=(d.score or 0.0) * (1 + self.boost))
                   if d.meta["doc_id"] in favoured else d for d in documents]
        return {"documents": sorted(boosted, key=lambda d: -(d.score or 0.0))}


@component
class CollapseSyndicatedCopies:
    """Keep the best-ranked chunk of each group of near-duplicate chunks; note the copies."""

    def __init__(self, top_k: int, max_per_article: int = 0) -> None:
        self.top_k = top_k
        self.max_per_article = max_per_article  # 0: no limit

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict:
        kept: list[Document] = []
        by_group: dict[str, Document] = {}
        per_article: Counter = Counter()
        for document in documents:
            group = document.meta.get("duplicate_of") or document.id
            if group in by_group:
                by_group[group].meta.setdefault("copies", []).append(document.meta["doc_id"])
                continue
            if self.max_per_article and per_article[document.meta["doc_id"]] >= self.max_per_article:
                continue
            per_article[document.meta["doc_id"]] += 1
            document.meta["copies"] = []
            by_group[group] = document
            kept.append(document)
        return {"documents": kept[: self.top_k]}


@component
class SentenceFocuser:
    """Pick the best sentences of the retrieved chunks and build reader passages around them."""

    def __init__(self, store: ArticleStore, focus_sentences: int, neighbours: int = 1, rrf_k: int = 10) -> None:
        self.store = store
        self.focus_sentences = focus_sentences
        self.neighbours = neighbours
        self.rrf_k = rrf_k

    def _lexical_scores(self, question: str, texts: list[str]) -> np.ndarray:
        """BM25 of the question against the candidate sentences, as their own small collection."""
        query = set(terms(question))
        documents = [terms(t) for t in texts]
        average = sum(map(len, documents)) / max(len(documents), 1) or 1.0
        frequency = Counter(t for d in documents for t in set(d))
        scores = np.zeros(len(texts))
        for i, words in enumerate(documents):
            counts = Counter(words)
            for term in query & counts.keys():
                idf = math.log(1 + (len(documents) - frequency[term] + 0.5) / (frequency[term] + 0.5))
                tf = counts[term]
                scores[i] += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(words) / average))
        return scores

    @component.output_types(passages=list[Document], closest=list[Document])
    def run(self, question: str, query_embedding: list[float], documents: list[Document]) -> dict:
        candidates: dict[tuple[str, int], int] = {}  # (doc_id, sentence index) -> best chunk rank
        copies: dict[str, list[str]] = defaultdict(list)  # article -> its syndicated copies
        for rank, chunk in enumerate(documents):
            doc_id = chunk.meta["doc_id"]
            copies[doc_id] += [c for c in chunk.meta.get("copies", []) if c not in copies[doc_id]]
            for i in range(chunk.meta["first_sentence"], chunk.meta["last_sentence"] + 1):
                candidates.setdefault((doc_id, i), rank)
        if not candidates:
            return {"passages": [], "closest": []}
        keys = list(candidates)
        texts = [self._sentence_text(d, i) for d, i in keys]
        query = np.asarray(query_embedding, dtype=np.float32)
        dense = np.array([float(self.store.sentence_vectors(d)[i] @ query) for d, i in keys])
        lexical = self._lexical_scores(question, texts)
        chunk_rank = np.array([candidates[k] for k in keys], dtype=float)
        fused = np.zeros(len(keys))
        for ranking in (np.argsort(-dense, kind="stable"), np.argsort(-lexical, kind="stable"),
                        np.argsort(chunk_rank, kind="stable")):
            fused[ranking] += 1.0 / (self.rrf_k + np.arange(1, len(keys) + 1))
        order = np.argsort(-fused, kind="stable")
        best = [keys[i] for i in order[: self.focus_sentences]]
        return {"passages": self._windows(best, copies), "closest": [self._sentence_document(d, i) for d, i in best[:2]]}

    def _sentence_text(self, doc_id: str, i: int) -> str:
        sentence = self.store.sentences(doc_id)[i]
        return self.store.article_text(doc_id)[sentence.start:sentence.end]

    def _sentence_document(self, doc_id: str, i: int) -> Document:
        sentence = self.store.sentences(doc_id)[i]
        return Document(content=self._sentence_text(doc_id, i),
                        meta={"doc_id": doc_id, "article_start": sentence.start, "article_end": sentence.end})

    def _windows(self, best: list[tuple[str, int]], copies: dict[str, list[str]]) -> list[Document]:
        """Each best sentence with `neighbours` sentences either side; overlapping windows merge.

        A passage keeps where its sentences start, so that the reader's spans stay inside one."""
        spans: dict[str, list[list[int]]] = defaultdict(list)
        first_seen: dict[str, int] = {}
        for rank, (doc_id, i) in enumerate(best):
            last = len(self.store.sentences(doc_id)) - 1
            spans[doc_id].append([max(0, i - self.neighbours), min(last, i + self.neighbours), rank])
            first_seen.setdefault(doc_id, rank)
        passages = []
        for doc_id, windows in spans.items():
            windows.sort()
            merged = [windows[0]]
            for low, high, rank in windows[1:]:
                if low <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], high)
                    merged[-1][2] = min(merged[-1][2], rank)
                else:
                    merged.append([low, high, rank])
            text = self.store.article_text(doc_id)
            sentences = self.store.sentences(doc_id)
            for low, high, rank in merged:
                start, end = sentences[low].start, sentences[high].end
                sentence_starts = [s.start - start for s in sentences[low + 1:high + 1]]
                passages.append(Document(content=text[start:end],
                                         meta={"doc_id": doc_id, "article_start": start, "article_end": end,
                                               "sentence_starts": sentence_starts,
                                               "focus_rank": rank, "copies": copies.get(doc_id, [])}))
        passages.sort(key=lambda d: d.meta["focus_rank"])
        return passages


_NAME_GAP = re.compile(r"\s*(?:[A-Z][a-z][\w.'’-]*\s+){0,3}")  # title-case words: not "CEO" in "Xiaomi CEO Lei Jun"


class _AnswerSpan(NamedTuple):
    evidence: float
    doc_id: str
    start: int  # character offsets in the article
    end: int
    passage: int  # the article offset of the passage it came from: agreement counts distinct passages


@component
class AnswerAssembler:
    """Merge reader spans with the same normalised text into one answer citing every article.

    An answer's evidence is its best span's margin over "no answer" (the reader's logits), less
    `focus_prior` × log(1 + the focus rank of its article's best passage), plus `agreement` × log(the
    number of passages that give it): the reader alone over-trusts a fluent distractor in a weakly
    related article, and several passages giving the same words are better evidence than one. (The
    article's rank, not the passage's: within a relevant article the answer often sits in a sentence
    that names the subject only as "it" or "its founder", which the focus step ranks low.) Its
    score is sigmoid(`calibration_factor` × evidence), the reader's own scale, and the no-answer
    threshold applies to it. "Also possible" answers are short (≤ `also_possible_max_words`),
    distinct from every answer already shown and not another piece of its name, within
    `also_possible_within` of the lead answer's evidence and of the kind the question asks for (a date
    for "when", a number for "how many", a name for "who"), or not shown. A span that holds at least `restatement_share` of the question's
    own words (of two or more) restates the question ("The judge who ruled in favor of Xiaomi called …"
    for "Which judge ruled in favor of Xiaomi?") and is not an answer; 0 keeps every span. With
    `complete_names`, a name answer runs on through the capitalised words naming what the question asks
    for ("New York" -> "New York Stock Exchange" for "Which stock exchange …?").

    With `reread_sentences`, the lead answer's paragraph is read again, alone: up to that many sentences
    either side of its own, and never fewer than `reread_neighbours`, the focus windows' reach (a
    one-sentence news paragraph often names its subject in the sentence before). Where that reading's
    best span beats the paragraph's own "no answer" by more than the lead's evidence, that margin is the
    lead's evidence, and the threshold applies to it: the reader was trained on whole paragraphs, and a
    focus window of three sentences cut across paragraphs can leave an answerable question looking
    unanswerable (README, Evaluation). The lead keeps its words.
    """

    def __init__(self, store: ArticleStore, no_answer_threshold: float, max_answers: int,
                 max_answer_words: int = 30, citation_similarity: float = 0.0, focus_prior: float = 0.0,
                 agreement: float = 0.0, also_possible_within: float = float("inf"),
                 also_possible_max_words: int = 30, calibration_factor: float = 0.1,
                 restatement_share: float = 0.0, complete_names: bool = False, lead_reader=None,
                 reread_sentences: int = 0, reread_neighbours: int = 1) -> None:
        self.store = store
        self.no_answer_threshold = no_answer_threshold
        self.max_answers = max_answers
        self.max_answer_words = max_answer_words
        self.citation_similarity = citation_similarity
        self.focus_prior = focus_prior
        self.agreement = agreement
        self.also_possible_within = also_possible_within
        self.also_possible_max_words = also_possible_max_words
        self.calibration_factor = calibration_factor
        self.restatement_share = restatement_share
        self.complete_names = complete_names
        self.lead_reader = lead_reader  # a NullRelativeExtractiveReader, for reading the lead answer again
        self.reread_sentences = reread_sentences if lead_reader is not None else 0
        self.reread_neighbours = reread_neighbours

    def _margin(self, answer: ExtractedAnswer) -> float:
        if "margin" in (answer.meta or {}):
            return float(answer.meta["margin"])
        score = min(max(float(answer.score), 1e-9), 1 - 1e-9)  # a reader that gives only a probability
        return math.log(score / (1 - score)) / self.calibration_factor

    @component.output_types(result=AnswerResult, best_score=float)
    def run(self, question: str, answers: list[ExtractedAnswer], passages: list[Document],
            closest: list[Document], retrieved: list[Document]) -> dict:
        groups: dict[str, list[_AnswerSpan]] = defaultdict(list)
        kind = answer_kind(question)
        question_terms = set(terms(question))
        article_rank: dict[str, int] = {}  # the focus rank of each article's best passage
        for passage in passages:
            doc_id = passage.meta["doc_id"]
            article_rank[doc_id] = min(article_rank.get(doc_id, passage.meta.get("focus_rank", 0)),
                                       passage.meta.get("focus_rank", 0))
        for answer in answers:
            if not answer.data or not answer.data.strip() or answer.document is None:
                continue
            found = self._phrase(question, question_terms, answer.document.content,
                                 answer.document_offset.start, answer.document_offset.end)
            if found is None:
                continue
            start, end = found
            meta = answer.document.meta
            base = meta["article_start"]
            groups[normalize_answer(answer.document.content[start:end])].append(_AnswerSpan(
                self._margin(answer) - self.focus_prior * math.log1p(article_rank.get(meta["doc_id"], 0)),
                meta["doc_id"], base + start, base + end, passage=base))
        ranked = sorted(((max(s.evidence for s in spans) + self.agreement * math.log(len({s.passage for s in spans})),
                          key, spans) for key, spans in groups.items()), key=lambda g: -g[0])
        lead_evidence = ranked[0][0] if ranked else 0.0  # "Also possible" answers are measured against it unraised
        if ranked and self.reread_sentences:
            ranked = self._reread_lead(question, question_terms, ranked)
        best_score = self._score(ranked[0][0]) if ranked else 0.0
        merged = []
        shown: list[tuple[str, list[_AnswerSpan]]] = []  # the answers kept so far, by key and spans
        for evidence, key, spans in ranked:
            score = self._score(evidence)
            if score < self.no_answer_threshold or len(merged) >= self.max_answers:
                break
            spans.sort(key=lambda s: -s.evidence)
            _, doc_id, start, end, _ = spans[0]
            text = self.store.article_text(doc_id)[start:end]
            if merged and not self._also_possible(key, text, spans, evidence, lead_evidence, shown, kind):
                continue
            shown.append((key, spans))
            # ordered, not a set: an article cited twice keeps its strongest mention, whatever the hash seed
            located = [loc for loc in dict.fromkeys(self._exact(text, s.doc_id, s.start, s.end) for s in spans)
                       if loc is not None]
            corroborating = self.store.lexical_search(text, 10)
            located += self._other_mentions(text, passages + retrieved + corroborating, (doc_id, start, end),
                                            {loc[0] for loc in located})
            citations = self._citations(located)
            merged.append(Answer(text=text, score=score, citations=citations))
        result = AnswerResult(question=question, no_answer=not merged, answers=merged)
        if not merged:
            result.closest = [self._citation(d.meta["doc_id"], d.meta["article_start"], d.meta["article_start"])
                              for d in closest]
        return {"result": result, "best_score": best_score}

    def _phrase(self, question: str, question_terms: set[str], content: str, start: int, end: int
                ) -> tuple[int, int] | None:
        """A reader span as an answer's offsets in `content` (its name completed, no outer spaces), or
        None: an answer is a phrase, not one across paragraphs, sentences long or restating the question."""
        if self.complete_names:
            end = completed_name(question, content, start, end)
        text = content[start:end]
        stripped = text.strip()
        if not stripped or "\n" in stripped or len(stripped.split()) > self.max_answer_words:
            return None
        if self._restates(question_terms, stripped):
            return None
        start += len(text) - len(text.lstrip())
        return start, start + len(stripped)

    def _reread_lead(self, question: str, question_terms: set[str], ranked: list[tuple[float, str, list[_AnswerSpan]]]
                     ) -> list[tuple[float, str, list[_AnswerSpan]]]:
        """`ranked` with the lead answer's evidence raised to the margin of the best span of its paragraph,
        read alone, where that is higher; its words and the rest stay as they are."""
        evidence, lead_key, lead_spans = ranked[0]
        lead = max(lead_spans, key=lambda s: s.evidence)
        text, sentences = self.store.article_text(lead.doc_id), self.store.sentences(lead.doc_id)
        own = max(0, bisect_right([s.start for s in sentences], lead.start) - 1)
        paragraph_start = text.rfind("\n", 0, lead.start) + 1
        paragraph_end = text.find("\n", lead.end) % (len(text) + 1)  # -1 (none) -> len(text)
        low, high = own, own
        while low > 0 and own - low < self.reread_sentences and sentences[low - 1].start >= paragraph_start:
            low -= 1
        while (high < len(sentences) - 1 and high - own < self.reread_sentences
               and sentences[high + 1].end <= paragraph_end):
            high += 1
        low, high = min(low, max(0, own - self.reread_neighbours)), max(high, min(len(sentences) - 1,
                                                                                  own + self.reread_neighbours))
        base = sentences[low].start
        passage = text[base:sentences[high].end]
        starts = [s.start - base for s in sentences[low + 1:high + 1]]
        for span in self.lead_reader.passage_spans(question, passage, starts):
            if self._phrase(question, question_terms, passage, span.start, span.end) is not None:
                return [(max(evidence, span.value), lead_key, lead_spans), *ranked[1:]]
        return ranked

    def _restates(self, question_terms: set[str], span: str) -> bool:
        if not self.restatement_share or len(question_terms) < 2:
            return False
        return len(question_terms & set(terms(span))) >= self.restatement_share * len(question_terms)

    def _score(self, evidence: float) -> float:
        return 1.0 / (1.0 + math.exp(-self.calibration_factor * evidence))

    def _also_possible(self, key: str, text: str, spans: list[_AnswerSpan], evidence: float, lead_evidence: float,
                       shown: list[tuple[str, list[_AnswerSpan]]], kind: str | None) -> bool:
        """Short, close to the lead answer's evidence, of the kind the question asks for ("When …?" →
        "Also possible: Later" is no alternative), and neither inside nor holding nor another piece of the
        name of an answer already shown ("Judge Rudolph Contreras" and then "Rudolph Contreras")."""
        return (len(key.split()) <= self.also_possible_max_words and lead_evidence - evidence <= self.also_possible_within
                and fits(kind, text)
                and not any(key in other_key or other_key in key or self._fragment_of(spans, other_spans)
                            for other_key, other_spans in shown))

    def _fragment_of(self, spans: list[_AnswerSpan], other_spans: list[_AnswerSpan]) -> bool:
        """Whether the answer is another piece of another answer's name: it overlaps one of its spans, or
        only title-case words lie between them ("District" and "Judge" beside "Rudolph Contreras" in
        "District Judge Rudolph Contreras"), where "Beijing and Shanghai" stay two answers."""
        for span, other in itertools.product(spans, other_spans):
            if span.doc_id != other.doc_id:
                continue
            overlapping = span.start < other.end and other.start < span.end
            if overlapping or _NAME_GAP.fullmatch(
                    self.store.article_text(span.doc_id)[min(span.end, other.end):max(span.start, other.start)]):
                return True
        return False

    def _exact(self, text: str, doc_id: str, start: int, end: int) -> tuple[str, int, int] | None:
        """Where `text` itself sits at or around a span that matched it only after normalisation."""
        article = self.store.article_text(doc_id)
        if article[start:end] == text:
            return doc_id, start, end
        window_start = max(0, start - len(text) - 20)
        position = article.find(text, window_start, end + len(text) + 20)
        return (doc_id, position, position + len(text)) if position >= 0 else None

    def _other_mentions(self, text: str, passages: list[Document], answer: tuple[str, int, int],
                        cited: set[str]) -> list[tuple[str, int, int]]:
        """The same words in another retrieved article (or found by a BM25 search for the answer itself),
        or in a syndicated copy, support the answer too, if their sentence says much the same."""
        found = []

        def first_supporting(doc_id: str, content: str, base: int) -> None:
            position = content.find(text)
            while position >= 0 and doc_id not in cited:
                mention = (doc_id, base + position, base + position + len(text))
                if self._supports(mention, answer):
                    found.append(mention)
                    cited.add(doc_id)
                position = content.find(text, position + 1)

        for passage in passages:
            first_supporting(passage.meta["doc_id"], passage.content, passage.meta["article_start"])
            for copy in passage.meta.get("copies", []):
                first_supporting(copy, self.store.article_text(copy), 0)
        return found

    def _supports(self, mention: tuple[str, int, int], answer: tuple[str, int, int]) -> bool:
        """Whether the mention's sentence is near the answer's own ("March" in a sentence about
        something else is no proof)."""
        return float(self._sentence_vector(*mention[:2]) @ self._sentence_vector(*answer[:2])) \
            >= self.citation_similarity

    def _sentence_vector(self, doc_id: str, offset: int) -> np.ndarray:
        starts = [s.start for s in self.store.sentences(doc_id)]
        return self.store.sentence_vectors(doc_id)[max(0, bisect_right(starts, offset) - 1)]

    def _citations(self, located: list[tuple[str, int, int]]) -> list[Citation]:
        seen, citations = set(), []
        for doc_id, start, end in located:
            if doc_id in seen:
                continue
            seen.add(doc_id)
            citations.append(self._citation(doc_id, start, end))
        return citations

    def _citation(self, doc_id: str, start: int, end: int) -> Citation:
        """The sentence(s) holding article[start:end], with the span's offsets in them."""
        sentences = self.store.sentences(doc_id)
        covering = [s for s in sentences if s.end > start and s.start < max(end, start + 1)] or \
            [min(sentences, key=lambda s: abs(s.start - start))]
        snippet_start, snippet_end = covering[0].start, covering[-1].end
        snippet = self.store.article_text(doc_id)[snippet_start:snippet_end]
        meta = self.store.metadata(doc_id)
        return Citation(doc_id=doc_id, title=meta["title"], publisher=meta["publisher"],
                        published=meta["published"], url=meta["url"], snippet=snippet,
                        answer_start=start - snippet_start, answer_end=end - snippet_start,
                        article_start=start, article_end=end)
