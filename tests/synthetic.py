"""The tests' shared fixtures: synthetic English documents (random sentences over plain words, varied enough
to pass the repetition filters, with enough stop words to be English for the language identifier and
Gopher's stop-word rule), one short text per language for the filter, filter helpers, and small JSONL
inputs for the stages."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa

from pipeline.filter import FilterConfig, RuleSet, rules
from pipeline.filter.batch import rule_checks, substring_counts
from pipeline.filter.text import batch_stats

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


EN = """The old lighthouse stood at the edge of the cliff for more than a century. Sailors who passed the headland at night looked for its beam to find their way home.

In the spring of that year, the keeper and his daughter painted the tower white again. They carried the paint up the narrow stairs one bucket at a time, and the work took them most of a month.

When the storm came in October, the light did not fail. The fishing boats that had been caught outside the harbour followed it through the rocks, and every crew reached the shore with their nets."""

DE = """Der alte Leuchtturm stand mehr als hundert Jahre lang am Rand der Klippe. Seeleute, die nachts an der Landzunge vorbeifuhren, suchten nach seinem Licht, um den Weg nach Hause zu finden.

Im Frühjahr strichen der Wärter und seine Tochter den Turm wieder weiß. Sie trugen die Farbe Eimer für Eimer die schmale Treppe hinauf, und die Arbeit dauerte fast einen ganzen Monat.

Als im Oktober der Sturm kam, fiel das Licht nicht aus. Die Fischerboote, die draußen vor dem Hafen überrascht worden waren, folgten ihm durch die Felsen, und jede Mannschaft erreichte mit ihren Netzen das Ufer."""

ZH = """老灯塔在悬崖边上矗立了一百多年。夜里经过海角的水手们总是寻找它的光，好找到回家的路。

那年春天，看守人和他的女儿把塔身重新刷成了白色。他们提着油漆桶一趟一趟地走上狭窄的楼梯，这项工作几乎花了整整一个月。

十月风暴来临的时候，灯光一直没有熄灭。被困在港外的渔船跟着它穿过礁石，每一条船上的人都带着渔网平安地回到了岸上。"""

RU = """Старый маяк стоял на краю утёса больше ста лет. Моряки, проходившие мимо мыса ночью, искали его луч, чтобы найти дорогу домой.

Весной смотритель и его дочь снова покрасили башню в белый цвет. Они носили краску по узкой лестнице по одному ведру, и эта работа заняла у них почти целый месяц.

Когда в октябре пришёл шторм, свет не погас. Рыбацкие лодки, застигнутые бурей за гаванью, шли за ним между скал, и каждая команда вернулась на берег со своими сетями."""


FINEWEB_ENGLISH = FilterConfig(english=RuleSet())  # FineWeb's English chain instead of FineWeb-2's rules


def failing(text: str, lang: str = "en", cfg: FilterConfig | None = None) -> list[str]:
    """Every check (not only the first) that `text` fails under the rules for `lang`."""
    rs = (cfg or FilterConfig()).rules_for(lang)
    s = rules.Stats(batch_stats([text], [lang], rs.c4, rs.fineweb.short_line_length)._asdict())
    checks = rule_checks(s, rs, substring_counts(pa.array([text])), [lang])
    return [reason for reason, mask in checks if mask is not None and bool(mask[0])]


def batch_of(*texts: str, **extra) -> pa.RecordBatch:
    n = len(texts)
    columns = {
        "id": pa.array([f"d{i}" for i in range(n)], pa.string()),
        "text": pa.array(list(texts), pa.string()),
        "source": pa.array(["test"] * n, pa.string()),
        "url": pa.array([None] * n, pa.string()),
        "created": pa.array([None] * n, pa.string()),
        **{k: pa.array(v) for k, v in extra.items()},
    }
    return pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))


STAGE_WORDS = ("river stone light garden window morning letter silver quiet market harbor winter forest "
         "lantern bridge candle meadow thunder orchard valley").split()


def documents(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        sentences = [" ".join(rng.choice(STAGE_WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "."
                     for _ in range(rng.randint(2, 6))]
        docs.append({"id": f"doc{i:04d}", "text": " ".join(sentences), "source": "test", "url": None, "created": None})
    return docs


def write_jsonl(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
