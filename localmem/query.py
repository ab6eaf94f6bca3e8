"""Search-query normalisation.

Memories are written without their subject: extraction turns "I play tennis"
into "Plays tennis", and a memory's owner is its scope, not its text. A query
such as "What are Alice's hobbies?" searched in Alice's own scope therefore
carries a name that no memory contains, and with a small embedder that name
dominates: all-MiniLM-L6-v2 scores "Likes to play tennis on weekends" 0.125 and
"Has a linear algebra midterm exam on November 20" 0.125 for it, but 0.277 and
0.050 for "What are the hobbies?". So, in a scoped search, a scope id that
appears in the query as a word is dropped ("Alice's" becomes "the"). Ids that
are not words (uuids, "conv-26") never match, and the original query is kept
when nothing would be left. ``strip_scope_from_query: false`` turns this off.
"""

from __future__ import annotations

import re

from localmem.records import Scope


def strip_scope(query: str, scope: Scope) -> str:
    text = query
    for value in scope.as_dict().values():
        if not re.fullmatch(r"[^\W\d_]+(?:[ .'-][^\W\d_]+)*", value):
            continue  # only name-like ids: a uuid or "user-42" never reads as a word of a question
        name = re.escape(value)
        text = re.sub(rf"\b{name}(?:'s|’s|s')(?=\W|$)", "the", text, flags=re.IGNORECASE)
        text = re.sub(rf"\b{name}\b", "", text, flags=re.IGNORECASE)
    text = " ".join(text.split())
    return text if re.search(r"\w", text) else query
