"""A generated corpus for the sections that must run with no data set present.

Texts are first-person-ish profile facts ("Maya's favourite food is ramen, she said last
spring.") built from seeded choices over small word lists, so they embed like short
conversational memories rather than random noise, and every run with the same seed builds
the same texts. ``labelled`` gives one fact per (person, attribute) and a question per fact
whose only relevant document is that fact: a retrieval task the embedder must solve by
matching both the person and the attribute, used to compare L2 / cosine / IP with no
download. The figures are not comparable with LoCoMo's or SciFact's, only with other
generated runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ("Maya", "Liam", "Sofia", "Noah", "Aisha", "Kenji", "Elena", "Omar", "Priya", "Lucas", "Zara", "Mateo",
         "Hana", "Ivan", "Chloe", "Tariq", "Ines", "Felix", "Amara", "Jonas", "Leila", "Diego", "Mei", "Oscar",
         "Nadia", "Rafael", "Yuki", "Samuel", "Freya", "Arjun", "Clara", "Emeka", "Lina", "Hugo", "Sana", "Pavel",
         "Greta", "Kofi", "Alma", "Ravi", "Iris", "Tomas", "Ayla", "Bruno", "Naomi", "Sven", "Dalia", "Marco",
         "Esme", "Idris")
# attribute -> (statement template, question template, values)
ATTRIBUTES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "food": ("{p}'s favourite food is {v}", "What is {p}'s favourite food?",
             ("ramen", "lasagna", "tacos", "sushi", "falafel", "paella", "pho", "curry", "pierogi", "risotto")),
    "pet": ("{p} has a pet {v}", "What kind of pet does {p} have?",
            ("beagle", "tabby cat", "parrot", "tortoise", "hamster", "goldfish", "rabbit", "ferret", "husky")),
    "city": ("{p} grew up in {v}", "Where did {p} grow up?",
             ("Lisbon", "Osaka", "Nairobi", "Toronto", "Krakow", "Lima", "Hanoi", "Dublin", "Cairo", "Oslo")),
    "job": ("{p} works as a {v}", "What does {p} do for a living?",
            ("nurse", "carpenter", "pilot", "teacher", "data analyst", "chef", "architect", "librarian", "baker")),
    "sport": ("{p} plays {v} every weekend", "Which sport does {p} play?",
              ("tennis", "basketball", "volleyball", "badminton", "rugby", "table tennis", "handball", "squash")),
    "music": ("{p} mostly listens to {v}", "What music does {p} listen to?",
              ("jazz", "k-pop", "heavy metal", "classical piano", "reggae", "bluegrass", "techno", "flamenco")),
    "book": ("{p} is reading a novel by {v}", "Whose novel is {p} reading?",
             ("Toni Morrison", "Haruki Murakami", "Jane Austen", "Chinua Achebe", "Italo Calvino", "Ursula Le Guin")),
    "allergy": ("{p} is allergic to {v}", "What is {p} allergic to?",
                ("peanuts", "shellfish", "pollen", "cats", "penicillin", "gluten", "dust mites", "bee stings")),
    "hobby": ("{p} spends evenings {v}", "What does {p} do in the evenings?",
              ("knitting scarves", "building model trains", "painting watercolours", "baking sourdough",
               "restoring bicycles", "learning Italian", "birdwatching", "writing poetry")),
    "car": ("{p} drives an old {v}", "What car does {p} drive?",
            ("Volvo estate", "red Fiat", "Toyota pickup", "VW camper van", "Honda Civic", "Land Rover")),
    "drink": ("{p} always orders {v}", "What does {p} usually drink?",
              ("green tea", "an oat latte", "sparkling water", "espresso", "hot chocolate", "ginger beer")),
    "fear": ("{p} is afraid of {v}", "What is {p} afraid of?",
             ("heights", "spiders", "deep water", "thunderstorms", "flying", "the dark", "public speaking")),
}
TAILS = ("", " since last spring", ", according to a sister", ", as mentioned on Friday", " these days",
         ", which surprised everyone", " for years now", ", or so the story goes")


@dataclass(frozen=True)
class Labelled:
    doc_ids: list[str]
    docs: list[str]
    query_ids: list[str]
    queries: list[str]
    relevant: list[str]  # the one relevant doc id per query


def _fact(person: str, attribute: str, value: str, tail: str) -> str:
    return ATTRIBUTES[attribute][0].format(p=person, v=value) + tail + "."


def texts(n: int, seed: int) -> list[str]:
    """``n`` distinct generated facts, seeded; the same (n, seed) gives the same list."""
    rng = random.Random(seed)
    attributes = sorted(ATTRIBUTES)
    out: list[str] = []
    seen: set[str] = set()
    capacity = len(NAMES) * sum(len(ATTRIBUTES[a][2]) for a in attributes) * len(TAILS)
    if n > capacity:
        raise ValueError(f"the generated corpus holds at most {capacity} distinct texts, not {n}")
    while len(out) < n:
        attribute = rng.choice(attributes)
        text = _fact(rng.choice(NAMES), attribute, rng.choice(ATTRIBUTES[attribute][2]), rng.choice(TAILS))
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def questions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [ATTRIBUTES[a][1].format(p=rng.choice(NAMES)) for a in rng.choices(sorted(ATTRIBUTES), k=n)]


def labelled(n_queries: int, seed: int) -> Labelled:
    """One fact per (person, attribute); ``n_queries`` of them get a question, seeded."""
    rng = random.Random(seed)
    doc_ids, docs = [], []
    for person in NAMES:
        for attribute in sorted(ATTRIBUTES):
            doc_ids.append(f"{person}|{attribute}")
            docs.append(_fact(person, attribute, rng.choice(ATTRIBUTES[attribute][2]), rng.choice(TAILS)))
    picked = sorted(rng.sample(range(len(doc_ids)), min(n_queries, len(doc_ids))))
    return Labelled(doc_ids=doc_ids, docs=docs, query_ids=[doc_ids[i] for i in picked],
                    queries=[ATTRIBUTES[doc_ids[i].split("|")[1]][1].format(p=doc_ids[i].split("|")[0])
                             for i in picked],
                    relevant=[doc_ids[i] for i in picked])


# -- a generated multi-session conversation ----------------------------------------------------------
SPEAKERS = ("Maya", "Liam")  # the two people talking; the facts they mention are about others
_OPENERS = ("By the way,", "Oh, I forgot to say:", "Funny thing:", "Did you know?", "Guess what:", "Also,")
_SMALL_TALK = ("How was your {d}?", "I spent the {d} {a}.", "The {d} went by too fast, I was {a}.",
               "Are you free this {d}? I might be {a}.", "Last {d} I was {a} again.",
               "This {d} I ended up {a}.", "No plans for the {d} except {a}.")
_DAYS = ("weekend", "morning", "evening", "Saturday", "Sunday", "holiday", "afternoon", "Friday night")
_DOING = ("tidying the flat", "walking by the river", "catching up on sleep", "cooking for friends",
          "fixing the bike", "at the market", "answering emails", "watching old films", "visiting my parents",
          "repotting plants", "queueing at the post office", "trying a new cafe")


@dataclass(frozen=True)
class Said:
    """One turn of the generated conversation; ``fact`` is "person|attribute" when it states one."""

    session: int
    speaker: str
    text: str
    fact: str | None


def conversation(n_turns: int, seed: int, session_turns: int = 20) -> list[Said]:
    """Two people talking over sessions of ``session_turns`` turns: every other turn states a fact about
    someone else (each (person, attribute) at most once, so a question has one relevant turn), the rest
    is small talk. Seeded; distinct texts."""
    rng = random.Random(seed)
    facts = [(p, a) for p in NAMES if p not in SPEAKERS for a in sorted(ATTRIBUTES)]
    rng.shuffle(facts)
    chatter = list(dict.fromkeys(t.format(d=d, a=a) for t in _SMALL_TALK for d in _DAYS for a in _DOING))
    rng.shuffle(chatter)
    if n_turns > len(facts) + len(chatter):
        raise ValueError(f"the generated conversation holds at most {len(facts) + len(chatter)} turns, not {n_turns}")
    out: list[Said] = []
    for i in range(n_turns):
        speaker = SPEAKERS[i % 2]
        if (i % 2 and facts) or not chatter:
            person, attribute = facts.pop()
            values = ATTRIBUTES[attribute][2]
            fact = _fact(person, attribute, rng.choice(values), rng.choice(TAILS))
            out.append(Said(i // session_turns, speaker, f"{rng.choice(_OPENERS)} {fact}", f"{person}|{attribute}"))
        else:
            out.append(Said(i // session_turns, speaker, chatter.pop(), None))
    return out


def question(fact: str) -> str:
    """The question whose only relevant turn is the one stating ``fact`` ("person|attribute")."""
    person, attribute = fact.split("|")
    return ATTRIBUTES[attribute][1].format(p=person)
