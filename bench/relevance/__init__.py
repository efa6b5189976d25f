"""Search relevance bench: a generated spoken corpus with sentence-level ground truth (topics.py,
corpus.py), queries of five kinds (queries.py), a runner that ingests the corpus into a fresh local
runtime and records hybrid, BM25-alone and vector-alone results (runner.py), and their scoring
(metrics.py, report.py). Entry point: `python -m bench.relevance_bench`."""
