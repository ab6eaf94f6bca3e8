"""Adapters to the frameworks localmem's users build with; each imports its framework, so each is
an optional extra: ``[langchain]`` (langchain.py) and ``[llamaindex]`` (llama_index.py).

They wrap any memory with ``Memory``'s methods (a ``Memory`` or a ``MemoryClient``) and add no
logic of their own: searching, storing and extracting stay ``Memory``'s.
"""
