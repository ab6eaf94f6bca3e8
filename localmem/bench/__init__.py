"""localmem's benchmark suite: ``localmem bench [--quick]``.

Latency vs size per Milvus index (with an exact numpy floor), scoring metrics
(L2 / cosine / IP), ingestion throughput and full-product retrieval on LoCoMo.
Data is read from the shared data folder, never copied into the repository.
"""
