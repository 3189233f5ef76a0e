"""corpusforge data pipeline: pure functions over documents and Arrow batches, and the Spark stages built on them."""
__version__ = "0.1.0"
