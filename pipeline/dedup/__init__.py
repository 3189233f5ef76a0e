"""Exact and near-duplicate removal: pure MinHash functions (`minhash`), the keep rule (`keep`), the
settings (`config`, Spark-free), the Spark algorithm (`dedupe_spark`), connected components
(`components_spark`) and the persisted index of earlier batches (`index_spark`)."""
