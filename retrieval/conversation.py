"""Follow-up questions: a question read with its thread's earlier turns, by rules.

A thread's turns are what Byline was asked and answered before in it (`Turn`). `read_in_context`
decides whether a new question follows up on them and, if so, how to read it (`Reading`):

1. Fresh, inheriting nothing: no earlier turn; a question starting "new question:"; or a question
   with no word that points back (below) of whose content words fewer than a third occur in the
   thread's last two turns (questions and answers): a new subject.
2. A follow-up, read with the thread's turns, when a word points back:
   - "he/she/him/his/her" become the person the thread last named: the answer to a question asking
     for a person ("who …", "which judge …"), else a titled name in a question ("Judge X");
   - "the company/firm/group" becomes, in the latest turn that has one, the organisation asked for
     ("which company …", answered with a name), else the question's last name that is not one of the
     thread's people (names before acronyms: "Xiaomi", not "CCMC");
   - "it/its/they/them/their" become the previous answer only when that answered "which …/what …"
     with a name ("Which stock exchange …?" "New York Stock Exchange"); otherwise "it" is left as it
     is (it is as often the designation or the story as the company), and retrieval resolves it;
   - "and Huawei?" / "what about Huawei?" asks the previous question again with Huawei in place of
     the previous question's last name;
   - "when was that?" (a question word with only "that/this/it") asks it about the previous fact:
     the previous question with its question phrase replaced by the previous answer ("Which court
     issued …?" "federal court in Washington" -> "When was that: federal court in Washington issued …?").
   The reader reads the question so rewritten. Retrieval searches with it plus the previous
   question's key terms and the previous answer (not for "and Huawei?", whose previous answer was
   about something else), and the articles the previous answer cited get a boost in the fused
   ranking.
3. Same subject: no word points back but a third or more of its content words occur in the thread.
   The question names what it asks about, so it is read and searched as asked; only the thread's
   articles get the boost.

Rules, not a model: they are instant, need no training data (there is none here for news threads),
and every decision can be shown to the user ("read as: …") and explained. A small coreference model
would resolve more ("it" = the designation), but none ships with Byline and the reader, not the
rewriting, is what loses most follow-ups (README, Conversations).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

STOPWORDS = frozenset(
    "a an the of to in on for and or is are was were be been being by with at from as that this these those it its "
    "what who whom whose which when where why how did do does has have had not no their there they them he she "
    "him his her hers than then about after before into over also any some such can could would should will may "
    "might must say said says tell told".split())
WORD = re.compile(r"[\w’'-]+")
NEW_QUESTION = re.compile(r"^\s*(?:new\s+(?:question|topic|subject)|start\s+over)\s*[:,.!\-–—]+\s*", re.IGNORECASE)
ELLIPTICAL_ENTITY = re.compile(r"^\s*(?i:and|what about|how about|and what about|and how about)\s+(?i:for\s+)?"
                               r"(?P<entity>[A-Z][\w’'.&-]*(?:\s+[A-Z][\w’'.&-]*){0,3})\s*\??\s*$")
ABOUT_THAT = re.compile(r"^\s*(?P<wh>when|where|why|how|who|how long|how much|how many)\b"
                        r"(?:\s+(?:was|were|is|did|does|do|has|had|happened|happen))*"
                        r"(?:\s+(?:that|this|it))(?:\s+(?:happen|happened|take place|say|said|decided?))?\s*\??\s*$",
                        re.IGNORECASE)
PERSON_NOUNS = ("judge", "person", "man", "woman", "founder", "chair", "chairman", "chairwoman", "ceo", "executive",
                "reporter", "editor", "spokesperson", "spokesman", "president", "leader", "official", "minister",
                "journalist", "author", "lawyer", "analyst", "senator", "director", "boss", "owner")
PERSON_QUESTION = re.compile(r"^\s*(?:who|whom|whose|(?:which|what)\s+(?:" + "|".join(PERSON_NOUNS) + r"))\b",
                             re.IGNORECASE)
THING_QUESTION = re.compile(r"^\s*(?:which|what)\s+(?!(?:did|does|do|is|was|were|are|has|had|have|will|would|can|"
                            r"could|should|happened)\b)\w", re.IGNORECASE)
TITLES = ("Judge", "President", "CEO", "founder", "chair", "Mr", "Mrs", "Ms", "Dr", "Senator", "Minister",
          "spokesperson", "chairman", "reporter", "editor")
TITLED_NAME = re.compile(r"\b(?:" + "|".join(TITLES) + r")\.?\s+((?:[A-Z][\w’'-]+\s?){1,3})")
NAME = re.compile(r"(?<![\w’'-])((?:[A-Z][\w’'.-]*|of|the|for|and)(?:\s+(?:[A-Z][\w’'.-]*|of|the|for|and))*)")
PERSON_PRONOUN = re.compile(r"\b(he|she|him|his|her)\b", re.IGNORECASE)
THING_PRONOUN = re.compile(r"\b(it|its|they|them|their)\b", re.IGNORECASE)
THE_COMPANY = re.compile(r"\bthe (company|firm|group|business)(’s|'s)?", re.IGNORECASE)
PAST_OR_PRESENT_VERB = (r"(?:\w+ed|won|said|told|made|gave|took|held|led|sold|paid|wrote|sent|put|set|cut|left|lost|"
                        r"became|began|brought|bought|found|got|kept|met|ran|stood|spent|owns|runs|leads|heads|chairs)")
QUESTION_PHRASE = re.compile(r"^\s*(?:who|whom|which|what)(?:\s+[\w’'-]+){0,3}?\s+"
                             r"(?=" + PAST_OR_PRESENT_VERB + r"\b)", re.IGNORECASE)
NEW_SUBJECT_OVERLAP = 1 / 3


@dataclass(frozen=True)
class Turn:
    """One question Byline answered in a thread."""
    question: str  # as asked
    read_as: str  # as Byline read it (the question with its references resolved)
    answer: str | None  # None: no answer
    doc_ids: tuple[str, ...] = ()  # the articles the answer cited

    @classmethod
    def from_result(cls, result) -> Turn:
        """The turn an `AnswerResult` makes."""
        best = None if result.no_answer else result.best
        return cls(question=result.question, read_as=result.read_as or result.question,
                   answer=best.text if best else None, doc_ids=tuple(best.articles) if best else ())

    def to_dict(self) -> dict:
        return {"question": self.question, "read_as": self.read_as, "answer": self.answer,
                "doc_ids": list(self.doc_ids)}

    @classmethod
    def from_dict(cls, data: dict) -> Turn:
        return cls(question=data["question"], read_as=data.get("read_as") or data["question"],
                   answer=data.get("answer"), doc_ids=tuple(data.get("doc_ids") or ()))


@dataclass(frozen=True)
class Reading:
    """How to answer one question: what the reader reads, what retrieval searches for, which articles
    to favour, and why."""
    question: str
    retrieval_query: str
    boost: tuple[str, ...] = ()
    follow_up: bool = False
    why: str = "no earlier turn"


def content_terms(text: str) -> list[str]:
    words = (re.sub(r"[’']s$", "", t).strip("’'-") for t in WORD.findall(text.lower()))
    return [w for w in words if w and w not in STOPWORDS]


def names_in(text: str) -> list[str]:
    """Capitalised names in a question (its first word aside), with "of/the/for/and" inside them."""
    names = []
    for match in NAME.finditer(text):
        name = match.group(1)
        if match.start() == len(text) - len(text.lstrip()):  # the question's first word is capitalised anyway
            name = name.split(" ", 1)[1] if " " in name else ""
        name = re.sub(r"^(?:(?:of|the|for|and)\s+)+|(?:\s+(?:of|the|for|and))+$", "", name).strip()
        name = re.sub(r"[’']s$", "", name)
        if name and name[0].isupper():
            names.append(name)
    return names


def _looks_like_a_name(text: str | None) -> bool:
    words = (text or "").split()
    return 0 < len(words) <= 5 and words[0][0].isupper()


def person_in(turn: Turn) -> str | None:
    if PERSON_QUESTION.match(turn.read_as) and _looks_like_a_name(turn.answer):
        return turn.answer
    titled = TITLED_NAME.findall(turn.read_as) or TITLED_NAME.findall(turn.answer or "")
    return titled[-1].strip() if titled else None


def thing_answered(turn: Turn) -> str | None:
    """The previous answer, when the previous question asked "which …" or "what …" (not for a person)
    and the answer is a name."""
    asked_for_a_thing = THING_QUESTION.match(turn.read_as) and not PERSON_QUESTION.match(turn.read_as)
    return turn.answer if asked_for_a_thing and _looks_like_a_name(turn.answer) else None


def people_in(turns: Sequence[Turn]) -> list[str]:
    """The people the thread is about, oldest first."""
    return [person for person in map(person_in, turns) if person]


def last_name_in(turn: Turn, people: Sequence[str] = ()) -> str | None:
    """The last name in the question that is not a title or one of the thread's `people`, preferring
    names to acronyms ("Xiaomi" to "CCMC" in "When was Xiaomi added to the CCMC list?")."""
    names = [n for n in names_in(turn.read_as) if n not in TITLES and not any(n in p or p in n for p in people)]
    names = [n for n in names if not n.isupper()] or names
    return names[-1] if names else None


def company_in(turn: Turn, people: Sequence[str] = ()) -> str | None:
    """What "the company" means after `turn`: the organisation it asked for, else the last name in it."""
    return thing_answered(turn) or last_name_in(turn, people)


def _possessive(name: str) -> str:
    return name + ("’" if name.endswith("s") else "’s")


def resolve_references(question: str, turns: Sequence[Turn]) -> tuple[str, list[str]]:
    """`question` with its pronouns and "the company" replaced where the thread says what they are
    (the latest turn that does), and the replacements made ("he → Rudolph Contreras")."""
    people = people_in(turns)
    person = people[-1] if people else None
    company = next((c for c in (company_in(t, people) for t in reversed(turns)) if c), None)
    thing = thing_answered(turns[-1])
    made = []

    def replace(pattern: re.Pattern, name: str | None, possessives: tuple[str, ...], text: str) -> str:
        def one(match: re.Match) -> str:
            word = match.group(0)
            made.append(f"{word} → {name}")
            return _possessive(name) if word.lower() in possessives or match.group(match.lastindex or 0) in \
                ("’s", "'s") else name
        return pattern.sub(one, text) if name else text

    question = replace(PERSON_PRONOUN, person, ("his",), question)
    question = replace(THE_COMPANY, company, (), question)
    question = replace(THING_PRONOUN, thing, ("its", "their"), question)
    return question, made


def statement_of(turn: Turn) -> str:
    """The previous fact as a statement: "Which judge blocked X?" + "Rudolph Contreras" ->
    "Rudolph Contreras blocked X"; otherwise the question and its answer side by side."""
    question = turn.read_as.strip().rstrip("?").strip()
    if turn.answer and QUESTION_PHRASE.match(question):
        return QUESTION_PHRASE.sub(turn.answer + " ", question, count=1)
    return f"{question}: {turn.answer}" if turn.answer else question


def refers_back(question: str) -> bool:
    return bool(PERSON_PRONOUN.search(question) or THING_PRONOUN.search(question) or THE_COMPANY.search(question))


def read_in_context(question: str, turns: Sequence[Turn]) -> Reading:
    """How to read `question` after `turns` (oldest first); see the module docstring."""
    stripped = NEW_QUESTION.sub("", question)
    if stripped != question:
        return Reading(stripped, stripped, why="asked as a new question")
    if not turns:
        return Reading(question, question)
    previous = turns[-1]
    carried = [previous.read_as, previous.answer or ""]  # what retrieval adds from the previous turn
    if match := ABOUT_THAT.match(question):
        read_as = f"{match.group('wh').capitalize()} was that: {statement_of(previous)}?"
        why = "asks about the previous answer"
    elif match := ELLIPTICAL_ENTITY.match(question):
        entity, replaced = match.group("entity"), last_name_in(previous, people_in(turns))
        if replaced and replaced in previous.read_as:
            read_as = previous.read_as.replace(replaced, entity)
            carried = []  # the previous question's words are all in it, and its answer was about another
        else:
            read_as = f"{previous.read_as} ({entity})"
        why = f"asks the previous question about {entity}"
    elif refers_back(question):
        read_as, made = resolve_references(question, turns)
        why = "refers back" + (f" ({', '.join(made)})" if made else "")
    else:
        own = set(content_terms(question))
        thread = set(content_terms(" ".join(f"{t.read_as} {t.answer or ''}" for t in turns[-2:])))
        if not own or len(own & thread) < NEW_SUBJECT_OVERLAP * len(own):
            return Reading(question, question, why="a new subject")
        # It names what it asks about: only the thread's articles are favoured.
        return Reading(question, question, boost=previous.doc_ids, follow_up=True, why="same subject")
    own_terms = set(content_terms(read_as))
    added = [t for t in dict.fromkeys(content_terms(" ".join(carried))) if t not in own_terms]
    retrieval_query = " ".join([read_as, *added]).strip()
    return Reading(read_as, retrieval_query, boost=previous.doc_ids, follow_up=True, why=why)
