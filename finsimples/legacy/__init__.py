"""The lake format before Delta Lake: Parquet files versioned by FinSimples' own JSON manifests.

Kept whole, for two readers only: ``finsimples lake migrate`` reads a lake in this format to
convert it (:mod:`finsimples.migration`), and the tests and ``benchmarks.bench_lake`` build one
the way the old code did, as the migration's input and the benchmark's peer. Nothing else may
write it: it has no concurrency control (two writers committing at once lose one commit).
"""
