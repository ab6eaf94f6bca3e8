"""The retrieval core: every decision about what a search returns and in which order.

A store (vector_stores/) stores rows and offers candidates: rows by id and by
filter, the rows nearest a vector, the rows sharing a word with a text. This
package ranks them, whichever store drew them:

- ``fusion.py``   two lists (by meaning, by words) -> one ranking of groups, and what a score means
- ``ranking.py``  groups (a message and the facts and contexts drawn from it), ties, the depth cut,
                  the row that shows each group
- ``words.py``    BM25 with the statistics of the scope searched
- ``scopes.py``   what is kept per scope: its statistics, and on a Lite folder its rows, which then
                  answer every search of the scope, filtered or not (one engine per deployment)
- ``keeper.py``   the kept scopes behind one short lock: loads run outside it, bounded on a server
- ``matching.py`` a filter tree (filters.py) evaluated on a record in memory
- ``current.py``  what a search shows: the scope's own memories, what holds now first (currency.py's
                  rules), each scored by its similarity to the query
- ``results.py``  the hits as Mem0-shaped results: a message shown once, as its fact or itself

It must not import a store: stores import it (vector_stores/milvus.py draws Milvus's candidates,
vector_stores/reference.py is the smallest store ranked by this package alone).
"""
