"""Settings of deduplication, Spark-free so that reading a config imports no Spark."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from pipeline.dedup import minhash


@dataclass
class DedupeConfig:
    threshold: float = 0.8  # Jaccard of shingle sets at or above which two documents are duplicates
    num_perm: int = 128  # MinHash permutations: the length of a signature; bands x rows may not exceed it
    # LSH bands x rows; None takes both from datasketch's optimiser for threshold and num_perm. Misses
    # weigh 19x more than false candidates there, because verification removes false candidates.
    bands: Optional[int] = None
    rows: Optional[int] = None  # signature values per LSH band; set with bands, or leave both None
    false_positive_weight: float = 0.05  # weight of false candidates in datasketch's bands/rows optimiser
    false_negative_weight: float = 0.95  # weight of missed duplicates in datasketch's bands/rows optimiser
    ngram: int = 5  # word n-grams for space-delimited text
    char_ngram: int = 5  # character n-grams for text in no-space scripts
    # "auto": character n-grams when at least char_script_fraction of a document's characters are
    # Han, kana, Thai, Lao, Khmer, Myanmar or Tibetan; "always" / "never" force one kind.
    char_shingles: str = "auto"
    char_script_fraction: float = 0.3  # see char_shingles (a share, 0-1; spaces and punctuation are not counted)
    seed: int = 1  # seeds the MinHash permutations; a dedup index refuses a run with another seed
    # Keep a candidate pair only if the true Jaccard of its shingle sets reaches threshold (against a dedup
    # index: the estimate from the two signatures); off: every pair sharing an LSH bucket is a duplicate.
    verify: bool = True
    max_cc_rounds: int = 50  # distributed connected-components rounds before the stage fails as not converged
    # Connected components finish on the driver once the edges left are this few (~50 bytes each
    # there); 0 always runs the distributed rounds to convergence.
    cc_driver_max_edges: int = 1_000_000

    def lsh_params(self) -> tuple[int, int]:
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        if self.bands is not None or self.rows is not None:
            raise ValueError("set both dedupe bands and rows, or neither")
        return _optimal_param(self.threshold, self.num_perm, self.false_positive_weight,
                              self.false_negative_weight)

    def shingle_spec(self) -> minhash.ShingleSpec:
        return minhash.ShingleSpec(self.ngram, self.char_ngram, self.char_shingles, self.char_script_fraction)


@lru_cache(maxsize=None)
def _optimal_param(threshold: float, num_perm: int, fp_weight: float, fn_weight: float) -> tuple[int, int]:
    from datasketch.lsh import _optimal_param as optimise

    return tuple(int(x) for x in optimise(threshold, num_perm, fp_weight, fn_weight))
