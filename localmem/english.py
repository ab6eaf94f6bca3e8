"""English, written once: the word lists, tokenisers and person tables that localmem's word rules use.

Extraction (extractors/whose.py, prompting.py, gates.py, rules.py), contexts (context.py, through
whose.name_persons) and word statistics (retrieval/words.py) read their English from here, so a
word added to a list is added for every rule that shares it. The rules themselves stay in their
modules; this one holds data and tokenising only, and imports nothing from localmem.

Some lists look alike but are not the same on purpose, and are kept apart by name (merging them
changes what the rules do): the tokenisers differ in digits and apostrophes, the auxiliaries that
make a fragment ("Does it") are fewer than those that open a question, and the subjectless style
(prompting.to_memory_style) has its own, narrower verb tables (see ``third_person``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# -- tokenising ------------------------------------------------------------------
# Each tokeniser is the one its rules were measured with; they differ where noted.
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
CLAUSE_BREAK = re.compile(r"[,;:]\s+|\s+[-–—]\s+")
# Letters with one apostrophe part ("don't"); text lower-cased first. For person words (whose.py).
LETTER_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# The same with digits: for the gates, where "2 cats" must keep its number.
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Letters and digits only; apostrophes are dropped before (rules.py: "doesn't" -> "doesnt").
PLAIN_WORD = re.compile(r"[a-z0-9]+")
# Milvus's "standard" analyzer (Unicode words, lower-cased), which BM25 statistics must match (words.py).
ANALYZER_WORD = re.compile(r"\w+")
# Words, runs of other characters and whitespace, so that a rewrite can join them back unchanged.
REWRITE_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[^A-Za-z\s]+|\s+")


def analyzer_tokens(text: str) -> list[str]:
    """The words Milvus's standard analyzer sees in ``text``."""
    return ANALYZER_WORD.findall(text.lower())


# -- persons -----------------------------------------------------------------------
FIRST_PERSON = frozenset({"i", "we"})
SECOND_PERSON = frozenset({"you"})
PERSON_CONTRACTION = re.compile(r"^(i|we|you)('m|'re|'ve|'ll|'d)$", re.IGNORECASE)
FIRST_POSSESSIVE = frozenset({"my", "our", "mine", "ours"})
FIRST_OBJECT = frozenset({"me", "myself", "us", "ourselves"})
SECOND_POSSESSIVE = frozenset({"your", "yours"})
SECOND_OBJECT = frozenset({"yourself"})
# The words that open a clause about the speaker or about the listener (whose.about_listener).
SPEAKER_WORDS = frozenset({"i", "i'm", "i've", "i'd", "i'll", "my", "me", "mine", "myself", "we", "we're",
                           "we've", "our", "us"})
LISTENER_WORDS = frozenset({"you", "you're", "you've", "you'd", "you'll", "your", "yours", "yourself"})

# Words that open notes rather than name people ("Update: I moved"): never a speaker's name.
_NOT_NAMES = """
note notes update updates edit correction corrections re fwd fw ps pps question questions answer answers todo
reminder fyi btw user assistant system summary warning important tip tips hint info context source fact facts
status title subject topic quote example goal goals plan plans problem solution result results step task tasks
idea ideas thought thoughts feedback response reply request issue bug fix lesson rule reason conclusion news
breaking agenda today tomorrow yesterday morning evening tonight weekend update dear hello hi hey p s q a me i
also and but so ok okay yes no well anyway otherwise
"""
NOT_NAMES = frozenset(_NOT_NAMES.split())

# -- verbs ---------------------------------------------------------------------------
# Adverbs that may stand between a subject and its verb ("I really love" -> "loves").
ADVERBS = frozenset({"really", "also", "just", "usually", "always", "often", "never", "still", "recently",
                     "sometimes", "absolutely", "totally", "definitely", "finally", "actually", "currently"})
# The person rewrite (whose.py) also steps over these; the subjectless style does not (see third_person).
MORE_ADVERBS = ADVERBS | {"even", "already", "now", "only"}
MODALS = frozenset({"was", "had", "can", "could", "should", "must", "might", "may", "did"})
KEEP_VERBS = MODALS | {"will", "would", "shall"}  # the same for every person
IRREGULAR_PRESENT = {"am": "is", "are": "is", "have": "has", "do": "does", "were": "was", "'m": "is", "'re": "is",
                     "'ve": "has", "'ll": "will", "'d": "would", "don't": "doesn't", "dont": "doesn't",
                     "haven't": "hasn't", "aren't": "isn't", "weren't": "wasn't"}
IRREGULAR_PAST = frozenset({
    "went", "got", "made", "took", "saw", "met", "ran", "bought", "found", "gave", "came", "left", "felt",
    "thought", "told", "began", "wrote", "won", "lost", "spent", "sent", "built", "kept", "brought", "taught",
    "caught", "ate", "drove", "flew", "grew", "knew", "sold", "sang", "swam", "became", "heard", "held", "paid",
    "said", "sat", "slept", "stood", "understood", "read", "put", "let", "set", "cut", "hit", "quit", "chose",
    "drew", "fell", "forgot", "rode", "shot", "spoke", "stole", "threw", "woke", "wore", "broke", "tried"})
# The subjectless style's tables before they were shared: only "have" changes, and "will", "would",
# "shall" take an "s" there. Kept so that its facts read as before; unifying them is a measured change.
SUBJECTLESS_IRREGULAR = {"have": "has"}
SUBJECTLESS_KEEP = MODALS


def third_person(verb: str, irregular: Mapping[str, str] = IRREGULAR_PRESENT,
                 keep: frozenset[str] = KEEP_VERBS) -> str:
    """``love`` -> ``loves``, ``go`` -> ``goes``, ``try`` -> ``tries``; past tenses and ``keep`` unchanged."""
    low = verb.lower()
    if low in irregular:
        return irregular[low]
    if low in keep or low in IRREGULAR_PAST or low.endswith("ed") or not low.isalpha():
        return verb
    if low.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if low.endswith("y") and len(low) > 2 and low[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


# The verbs that open a question before its subject ("Have you ...", "Did I ...").
QUESTION_OPENERS = frozenset({"am", "are", "is", "was", "were", "have", "has", "had", "do", "does", "did", "will",
                              "would", "can", "could", "should", "shall", "may", "might", "must"})
# Words after which a "you" is a subject (besides the start of a sentence).
CLAUSE_OPENERS = frozenset({"and", "but", "so", "because", "if", "when", "that", "then", "or", "while", "as",
                            "since", "though", "although", "where", "why", "how", "what", "who", "hope", "hopes",
                            "think", "thinks", "guess", "guesses", "bet", "bets", "know", "knows", "glad", "sure",
                            "maybe"})
# First words of a fact whose subject is missing ("Went to a support group").
SUBJECTLESS_START = frozenset({"is", "has", "was", "had", "will", "would", "can", "does", "did", "likes", "loves",
                               "wants", "plans", "enjoys", "works", "lives", "goes", "went", "got", "feels",
                               "thinks", "hopes", "needs", "started", "finished", "recently", "also", "just",
                               "really", "attended", "joined", "took", "made", "found", "bought", "painted"})
# A speaker's own words rewritten to Mem0's subjectless style ("I am working on" -> "working on").
SUBJECTLESS_LEADS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), r) for p, r in (
        (r"^i\s*(?:am|'m)\s+", ""),
        (r"^im\s+", ""),
        (r"^i\s*(?:have|'ve)\s+", "has "),
        (r"^i\s+(?:do not|don't|dont)\s+", "does not "),
        (r"^i\s+(?:did not|didn't|didnt)\s+", "did not "),
        (r"^i\s+(?:cannot|can't|cant)\s+", "cannot "),
        (r"^i\s*(?:will|'ll)\s+", "will "),
        (r"^i\s*(?:would|'d)\s+", "would "),
        (r"^my\s+", ""),
    ))

# -- content ---------------------------------------------------------------------------
# Words that carry no content of their own: a fact made only of these says nothing (gates.py).
_FUNCTION_WORDS = """
i me my mine myself we us our ours you your yours he him his she her hers it its they them their theirs this that
these those there here who what which when where why how a an the and or but so if then than to of in on at by for
with from about as into onto up down out over off is am are was were be been being have has had do does did done
will would can could shall should may might must not no yes yeah yep nope oh wow hey hi hello thanks thank great
cool awesome nice sure ok okay lol haha really very just also too still even well good glad happy sounds sound
totally definitely absolutely something anything everything thing things stuff one ones some any all
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
# Subjects and objects that point elsewhere: "It was so powerful" says what?
DANGLING = frozenset({"it", "that", "this", "they", "them", "those", "these", "there", "he", "she", "him", "her",
                      "which", "what", "who", "how", "why", "where"})
# The auxiliaries of a fragment "Does it", "Is that" (fewer than QUESTION_OPENERS: gates.is_fragment).
FRAGMENT_AUXILIARIES = frozenset({"does", "do", "did", "is", "are", "was", "were", "can", "could", "will", "would",
                                  "have", "has"})
# Pronouns and auxiliaries: that "I have been" shares them with "How have you been?" proves nothing.
NOT_EVIDENCE = frozenset({"i", "my", "me", "we", "our", "us", "im", "ive", "mine", "myself", "you", "your",
                          "have", "has", "had", "been", "be", "will", "would", "can", "could", "so", "very"})
NEGATIONS = frozenset({"not", "no", "never", "anymore", "longer", "nt", "dont", "doesnt", "didnt", "isnt", "cant",
                       "stopped", "quit"})
# Words that carry no content when two memories are compared ("Does not like" vs "Likes").
FILLER = NEGATIONS | {"does", "do", "did", "is", "am", "are", "was", "were", "a", "an", "the", "any", "more",
                      "really", "still", "t", "s", "at", "all"}
# Words that only give a value (a date, a time, a number): what an update may change in a memory.
VALUE_WORDS = frozenset({
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "monday",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow", "yesterday",
    "tonight", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "pm"})
# People a message may say something of: "my sister's wedding", "our son's school" (gates.drops_owner).
_RELATIONS = """
sister brother mother mom mum father dad parents son daughter wife husband partner boyfriend girlfriend fiance fiancee
friend boss colleague coworker cousin aunt uncle grandma grandmother grandpa grandfather niece nephew kid kids child
children baby neighbor neighbour roommate
"""
RELATIONS = frozenset(_RELATIONS.split())
POSSESSIVES = frozenset({"my", "our", "his", "her", "their", "your"})
# Verbs and words that say something stopped ("Sold the car", "Quit the job").
ENDINGS = frozenset({"sold", "left", "ended", "cancelled", "canceled", "gave", "broke", "lost", "stopped", "quit",
                     "retired", "divorced", "moved", "finished", "graduated", "former", "formerly", "used"})
