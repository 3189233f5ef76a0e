"""corpusforge trainer: a GPT decoder trained with DDP on the token shards the pipeline writes."""
