"""Synthetic English documents for pipeline tests: random sentences over plain words, varied enough to pass
the repetition filters, with enough stop words to be English for the language identifier and Gopher's
stop-word rule."""
from __future__ import annotations

import random

WORDS = """river garden window market teacher village mountain letter engine harbour library morning station
bridge forest kitchen winter summer doctor student painter farmer captain island valley castle meadow bakery
journey museum theatre orchard lantern compass blanket ladder pencil ribbon candle thunder silver copper marble
canvas harvest festival carried painted visited opened watched followed repaired described remembered gathered
quiet old bright narrow famous gentle crowded distant careful patient curious modern people children evening
weather answer question story history science music picture paper water country family friend mother father
brother sister city road house school field garden table chair door wall floor light sound colour voice
walked talked asked thought found began learned played worked lived moved turned helped started showed
""".split()
STOP = "the of and to in that it was for on with as his they at be this from had by not but what all were we when".split()


def sentence(rng: random.Random) -> str:
    """One English-looking sentence of 10-18 words, about a third of them stop words."""
    words = [rng.choice(STOP) if rng.random() < 0.35 else rng.choice(WORDS) for _ in range(rng.randint(10, 18))]
    return " ".join(words).capitalize() + "."


def document(rng: random.Random, paragraphs: int = 3, sentences: int = 4) -> str:
    """Paragraphs of sentences, long enough for every quality rule and for 5-gram MinHash."""
    return "\n\n".join("\n".join(sentence(rng) for _ in range(sentences)) for _ in range(paragraphs))


def near_copy(text: str, word: str = "lighthouse") -> str:
    """`text` with its middle word replaced: a near duplicate (Jaccard of word 5-grams ~0.9)."""
    words = text.split(" ")
    words[len(words) // 2] = word
    return " ".join(words)
