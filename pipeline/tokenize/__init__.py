"""Tokenize stage: documents to packed token samples in deterministic WebDataset shards."""
