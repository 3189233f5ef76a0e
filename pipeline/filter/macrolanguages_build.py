"""Regenerate `macrolanguages.json`: every language subtag the IANA Language Subtag Registry (BCP 47) files
under an ISO 639-3 macrolanguage, and that macrolanguage (hr, bs, sr -> sh; id, ms, min -> ms; nn -> no).

Language ID scores the varieties of one macrolanguage against each other (lid.176 splits a Croatian page's
probability between hr, sr, bs and sh), so the filter scores a document by the probability of its language
and of the other members of its macrolanguage together (`langid.identify`). The registry is read from the
copy the langcodes package ships; langcodes is not a dependency of corpusforge, run this with it installed:

    pip install langcodes==3.5.1 && python -m pipeline.filter.macrolanguages_build
"""
from __future__ import annotations

import json
from importlib import resources
from importlib.metadata import version
from pathlib import Path

OUTPUT = Path(__file__).with_name("macrolanguages.json")


def build() -> dict:
    registry = (resources.files("langcodes") / "data" / "language-subtag-registry.txt").read_text(encoding="utf-8")
    records = registry.split("\n%%\n")
    members = {}
    for record in records[1:]:
        fields = dict(line.split(": ", 1) for line in record.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Type") == "language" and "Macrolanguage" in fields and "Deprecated" not in fields:
            members[fields["Subtag"]] = fields["Macrolanguage"]
    return {
        "source": {
            "registry": "IANA Language Subtag Registry (https://www.iana.org/assignments/language-subtag-registry), "
                        f"{records[0].strip()}, as shipped in langcodes {version('langcodes')}",
            "rule": "language subtags with a Macrolanguage field, deprecated ones left out",
            "generated_by": "python -m pipeline.filter.macrolanguages_build",
        },
        "macrolanguage": dict(sorted(members.items())),
    }


def main() -> None:
    OUTPUT.write_text(json.dumps(build(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
