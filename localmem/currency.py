"""What holds now, and whose it is: the rules behind "corrections win" and "the user's own".

Three questions, answered by deterministic English rules (no model: the bundled 270M model
attributes and dates facts unreliably, and these decisions change what a chatbot is told):

* ``is_chatter``: a message that only acknowledges or greets ("Noted!", "Great, thanks!", "Nice to
  meet you") carries nothing to remember; it is kept as an episode (it is part of the conversation,
  and the next turn's context quotes it) but never listed or found as a memory.
* ``supersedes``: does a later message of the same person say that an earlier one no longer holds?
  It must say something changed (a cue: "moved", "now", "no longer", "rescheduled", "passed away"...)
  about the same topic as the earlier one (a shared topic of ``_TOPICS``, or the two messages close in
  meaning). The earlier message is kept and marked (``superseded_by``, ``valid_until``); nothing is
  deleted, so a question about the past still finds it.
* ``asks_past`` / ``asks_assistant``: does a query ask about an earlier state ("before Porto", "last
  year"), or about what the assistant said ("what did you recommend")? A present-tense query is
  answered with the current statement first; only a query to the assistant gets its replies.

The rules err on the side of leaving things alone: a missed correction leaves the old ranking, a
false one only moves a newer message of the same person just above an older one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def _wordset(*lines: str) -> frozenset[str]:
    return frozenset(" ".join(lines).split())


_WORD = re.compile(r"[a-z0-9$€£]+(?:'[a-z]+)?")

# Words a pure acknowledgement, greeting or pleasantry is made of (lower case, apostrophes kept).
_CHATTER_WORDS = _wordset(
    "noted got it ok okay k sure great good nice cool awesome wonderful lovely perfect fantastic amazing excellent",
    "fine alright right thanks thank you thx ty welcome hi hello hey bye goodbye see you later soon yes yeah yep",
    "yup no nope of course absolutely definitely sounds that's thats it is will do done updated saved remembered",
    "understood gotcha glad to hear meet meeting too so much very really lol haha wow oh ah hmm hm indeed agreed",
    "happy help helps anytime any time no problem np my pleasure take care have a day night morning evening",
    "congrats congratulations enjoy fun i'll i i'm im me we we'll you're youre your it's its for the that this",
    "pleased again cheers keep in mind note will remember remind reminder reminders added set how are doing",
    "today going well all here what's whats how's hows up things your day tonight mate",
)
# ... and one of these at least: "note for Bob" or "keep me" are no acknowledgement.
_CHATTER_CORE = _wordset(
    "noted ok okay sure great nice cool awesome wonderful lovely perfect fantastic amazing excellent alright thanks",
    "thank thx ty welcome hi hello hey bye goodbye gotcha understood congrats congratulations cheers np anytime",
    "yes yeah yep yup lol haha wow how how's",
)
_NAME = re.compile(r"\b[A-Z][a-z]+\b")
# At most this many words: a longer message says something even in pleasant words.
_CHATTER_MAX_WORDS = 12

# Topics a person has one current state of at a time (where they live, their job, partner, diet, pets,
# a price, an appointment's date...). A word's stem (its first letters) names the topic.
_TOPICS: dict[str, tuple[str, ...]] = {
    "home": ("live", "living", "lives", "moved", "moving", "move", "relocat", "apartment", "flat", "house", "home",
             "city", "town", "neighbo", "address", "rent", "renting", "rented", "room", "place", "settled", "landlord"),
    "work": ("job", "work", "working", "worked", "career", "employ", "company", "office", "hired", "position", "boss",
             "quit", "fired", "laid", "promot", "retire", "colleague", "startup", "firm", "salary", "nurse", "teacher",
             "engineer", "developer", "manager", "doctor", "lawyer", "designer", "accountant", "chef", "teach", "team",
             "hospital", "business", "restaurant", "shop", "client", "joined"),
    "partner": ("boyfriend", "girlfriend", "partner", "husband", "wife", "dating", "married", "marry", "engaged",
                "fianc", "broke", "divorc", "single", "relationship", "split", "seeing", "together", "separate"),
    "diet": ("vegetarian", "vegan", "pescatarian", "meat", "diet", "keto", "gluten", "dairy", "eat", "eating",
             "fish", "chicken", "beef", "sugar", "coffee", "alcohol", "drink", "tea", "espresso", "dairy", "eggs"),
    "pet": ("pet", "dog", "cat", "puppy", "kitten", "hamster", "parrot", "rabbit", "bird", "adopt", "vet", "labrador",
            "retriever", "terrier", "poodle", "beagle", "collie", "spaniel", "greyhound", "tabby", "goldfish", "turtle",
            "guinea", "budgie"),
    "price": ("price", "cost", "$", "€", "£", "dollar", "euro", "pound", "fee", "subscription", "charge",
              "pay", "paid", "paying", "budget", "rate", "rent", "landlord", "asking", "sell", "selling"),
    "schedule": ("appointment", "dentist", "doctor", "meeting", "exam", "interview", "schedul", "reschedul",
                 "booked", "rebook", "checkup", "surgery", "flight", "flying", "fly", "airline", "deadline", "lesson",
                 "session", "offsite", "date"),
    "study": ("study", "studying", "major", "university", "college", "degree", "school", "course"),
    "hobby": ("hobby", "play", "playing", "sport", "running", "run", "guitar", "piano", "tennis", "yoga", "gym",
              "swim", "swimming", "climb", "paint", "cycling", "bike", "football", "soccer", "chess", "knit",
              "knitting", "played"),
    "vehicle": ("car", "drive", "driving", "bike", "motorbike", "scooter"),
    "device": ("phone", "laptop", "computer", "iphone", "android", "macbook", "windows", "linux", "editor", "app",
               "use", "using", "notes", "tool", "software"),
}

# Words and phrases that say a state changed (the later message is a correction, not more of the same).
# Strong ones say it outright; weak ones ("new", "now", "since") also open a plain statement, so they
# count only for a message on a topic the earlier one shares (``supersedes``).
_STRONG = (
    r"no longer", r"not anymore", r"anymore", r"any more", r"instead", r"switch(?:ed|ing)?", r"chang(?:ed|ing)",
    r"moved?", r"moving", r"relocat\w*", r"quit", r"left", r"leaving", r"resign\w*", r"fired", r"laid off",
    r"retired", r"stopped", r"gave up", r"giving up", r"given up", r"broke up", r"split up", r"divorc\w*",
    r"passed away", r"died", r"put down", r"rehomed", r"replaced", r"went (?:up|down)", r"gone (?:up|down)",
    r"raised", r"increased", r"dropped", r"lowered", r"reduced", r"down to", r"up to", r"reschedul\w*",
    r"postponed", r"pushed (?:back|to)", r"brought forward", r"cancell?ed", r"rebooked", r"separate ways",
    r"is off", r"off now", r"over now", r"handed in", r"moved out", r"moved in", r"used to", r"sold",
    r"not (?:any|a) \w+ any ?more",
)
_WEAK = (
    r"now", r"nowadays", r"these days", r"actually", r"new", r"hired", r"promoted", r"started", r"since",
    r"from now on", r"became", r"become", r"turned", r"upgraded", r"joined", r"settled", r"finally", r"lost",
    r"adopted", r"cut", r"ex", r"bought", r"got (?:married|engaged|a|an|a job|hired)", r"took a job",
)
_CHANGE = re.compile(r"\b(?:" + "|".join((*_STRONG, *_WEAK)) + r")\b")
_STRONG_CHANGE = re.compile(r"\b(?:" + "|".join(_STRONG) + r")\b")
# A message that says its state still holds is no correction ("I still live in Lisbon").
_CONTINUITY = re.compile(r"\b(?:still|again|as always|same as before)\b")
# Two messages this close in meaning (cosine) are on one topic even without a topic word in common.
SAME_TOPIC_SIMILARITY = 0.55
# ... and this close share a topic word or a name in earnest (not "home" in passing in a message about work).
TOPIC_WORD_SIMILARITY = 0.1

_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|we've|we'd|we'll|us|our|ours)\b")
_LETTERS = re.compile(r"[A-Za-z’']+")
_INSIDE = re.compile(r"(?<=[\w,;:'\"] )([A-Z][a-z]+)\b")
_OPENING = re.compile(r"(?:^|[.!?] +)([A-Z][a-z]+)\b")
# Words that say nothing of a topic: left out of a word search's query (a chat's scope is small, and
# there "the" or "is" decide which message BM25 ranks first) and never taken for names.
STOP_WORDS = _wordset(
    "a an the is are was were be been being am do does did doing have has had having of in on at to for with by from",
    "about as into onto up down out over off and or but if then than so that this these those it its it's i me my",
    "mine myself you your yours we us our ours he him his she her hers they them their theirs what which who whom",
    "whose where when why how there here all any some just also very can could would should will shall may might",
    "must not no yes since after before while during just now",
)
_REQUEST = re.compile(r"^(?:(?:can|could|would|will) you|please|any (?:tips|ideas|advice|suggestions)|"
                      r"(?:suggest|recommend|tell me|help me|remind me)\b|how (?:do|should|can|could) i\b)")

# Queries about an earlier state: these keep the plain ranking (the old statement is not moved down).
_PAST = re.compile(r"\b(?:" + "|".join((
    r"before", r"previous(?:ly)?", r"former(?:ly)?", r"used to", r"originally", r"at first", r"initially",
    r"earlier", r"back then", r"back when", r"in the past", r"as of", r"last (?:year|month|week|summer|winter|"
    r"spring|fall|autumn|time)", r"ago", r"old", r"first", r"was", r"were", r"did", r"had", r"until", r"prior",
    r"in (?:19|20)\d\d", r"ex",
)) + r")\b")
# Queries to the assistant about its own words.
_TO_ASSISTANT = re.compile(r"\b(?:you|your|yours|yourself|assistant|bot)\b")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def words_of(query: str) -> str:
    """A query's words for a word search (BM25): its stop words left out, so that in a chat's small
    scope a message is not ranked first for sharing "the" or "is" with the question."""
    return " ".join(_LETTERS.sub(lambda m: "" if m.group(0).lower() in STOP_WORDS else m.group(0), query).split())


def is_chatter(content: str, role: str | None = None) -> bool:
    """True for a message made only of acknowledgements, thanks, greetings and pleasantries.

    An assistant's may name things besides ("Nice to meet you, Maria!", "Porto is lovely! Updated."):
    it repeats what it was told. A user's that names something ("Porto!") is an answer, not chatter.
    """
    said = words(content)
    if not said or len(said) > _CHATTER_MAX_WORDS:
        return not said and not any(c.isalnum() for c in content)
    names = {w.lower() for w in _NAME.findall(content)} if role == "assistant" else set()
    return any(w in _CHATTER_CORE for w in said) and all(w in _CHATTER_WORDS or w in names for w in said)


def topics(text: str) -> frozenset[str]:
    """The topics of ``_TOPICS`` a text speaks of."""
    said = words(text)
    return frozenset(name for name, stems in _TOPICS.items() if any(_is(w, stem) for w in said for stem in stems))


def _is(word: str, stem: str) -> bool:
    # A short stem is a whole word ("cat", not "category"); a longer one a beginning ("relocat").
    if len(stem) <= 4 and stem.isalpha():
        return word in (stem, stem + "s", stem + "es")
    return word.startswith(stem)


def says_change(text: str) -> bool:
    """True when a message says something changed (and does not say it still holds)."""
    low = " ".join(words(text))
    return bool(_CHANGE.search(low)) and not _CONTINUITY.search(low)


def supersedes(new: str, old: str, similarity: float, people: frozenset[str] = frozenset()) -> bool:
    """Whether message ``new``, said after ``old`` by the same person, says ``old`` no longer holds.

    ``similarity`` is the cosine of the two messages. A change must be said, about a topic both share:
    a topic word in each (and some closeness, so a passing word does not count); said outright ("moved",
    "no longer", "passed away"), a name both speak of (not one of the conversation's ``people``, lower
    case, whom every message may address) or a close meaning is enough too.
    """
    if not says_change(new) or words(new) == words(old):
        return False
    # What the speaker says of someone else ("Sana has a tortoise now") changes nothing they said of a
    # third ("Kofi has a parrot"): two messages neither of which speaks in the first person must name
    # the same one.
    if not (_first_person(new) or _first_person(old) or shares_name(new, old, people)):
        return False
    shared_topic = similarity >= TOPIC_WORD_SIMILARITY and bool(topics(new) & topics(old))
    if not _STRONG_CHANGE.search(" ".join(words(new))):
        return shared_topic  # "a new cafe", "since Monday": only of a topic the earlier message is on
    # A name both speak of ("Jack and I broke up" / "my boyfriend Jack") is the topic, however far apart.
    return shared_topic or similarity >= SAME_TOPIC_SIMILARITY or (similarity >= 0 and shares_name(new, old, people))


def _first_person(text: str) -> bool:
    return bool(_FIRST_PERSON.search(" ".join(words(text))))


def shares_name(a: str, b: str, people: frozenset[str] = frozenset()) -> bool:
    """Whether two messages name the same one ("Jack and I broke up" / "my boyfriend Jack"): a capitalised
    word of both, inside a sentence in at least one of them (a sentence's first word may be no name),
    not one of ``people``."""
    (inside_a, first_a), (inside_b, first_b) = _names(a), _names(b)
    return bool((inside_a & (inside_b | first_b) | first_a & inside_b) - people)


def common_names(texts: list[str], at_least: int = 3) -> frozenset[str]:
    """Names in ``at_least`` of the texts: whom a conversation addresses ("Hey Mel!"), not a topic."""
    counts: dict[str, int] = {}
    for text in texts:
        for name in frozenset().union(*_names(text)):
            counts[name] = counts.get(name, 0) + 1
    return frozenset(name for name, n in counts.items() if n >= at_least)


def _names(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Capitalised words inside sentences, and opening them; common words left out."""
    inside = frozenset(w.lower() for w in _INSIDE.findall(text)) - STOP_WORDS - _CHATTER_WORDS
    first = frozenset(w.lower() for w in _OPENING.findall(text)) - STOP_WORDS - _CHATTER_WORDS
    return inside, first


def is_request(content: str) -> bool:
    """True for a message that asks (a question, or a request to the assistant) rather than states."""
    low = " ".join(words(content))
    return content.rstrip().endswith("?") or bool(_REQUEST.match(low))


def asks_past(query: str) -> bool:
    """True for a question about an earlier state: "where did she live before Porto?", "as of last year"."""
    return bool(_PAST.search(" ".join(words(query))))


def asks_assistant(query: str) -> bool:
    """True for a question about the assistant's own words: "what did you recommend last week?"."""
    return bool(_TO_ASSISTANT.search(" ".join(words(query))))


def latest(start: str, superseded_by: Mapping[str, str | None]) -> str:
    """The end of a chain of supersessions (A by B, B by C: C), cycles cut."""
    seen = {start}
    current = start
    while (after := superseded_by.get(current)) and after not in seen:
        seen.add(after)
        current = after
    return current


def is_own(role: str | None, scope_has_user: bool) -> bool:
    """Whether a message of this role is its scope's own memory: a user's scope holds what its people
    said, not the assistant's replies; the scope of an agent alone (no user_id) holds the agent's too."""
    return role != "assistant" or not scope_has_user
