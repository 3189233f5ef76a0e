"""Settings of the clean stage: the readers', HTML extraction's and text normalisation's, and what to do
with ids that several records carry."""
from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.clean.text import TextConfig
from pipeline.config import ConfigError
from pipeline.readers.html import HtmlConfig
from pipeline.readers.records import ReaderConfig

DUPLICATE_ID_POLICIES = ("derive", "fail")


@dataclass
class CleanConfig:
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    html: HtmlConfig = field(default_factory=HtmlConfig)
    text: TextConfig = field(default_factory=TextConfig)
    # Decode HTML character references left in plain text, "&#39;" -> "'" (pipeline/clean/entities.py).
    unescape_html_entities: bool = True
    # C4-style removal of cookie/privacy/javascript notice lines (pipeline/clean/boilerplate.py).
    remove_boilerplate_lines: bool = True
    # An id that more than one kept record carries (corpora merged from several sources reuse ids):
    # "derive" keeps every such record under `ID@FILE#LINE` (its input file and line, or row, or record),
    # so later stages, which key documents by id, never mistake one for another; "fail" stops the stage
    # naming examples. Either way stats.json's `duplicate_ids` counts them.
    duplicate_ids: str = "derive"

    def __post_init__(self):
        if self.duplicate_ids not in DUPLICATE_ID_POLICIES:
            raise ConfigError(f"clean.duplicate_ids: expected one of {', '.join(DUPLICATE_ID_POLICIES)}, "
                              f"got {self.duplicate_ids!r}")
