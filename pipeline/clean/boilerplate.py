"""C4-style removal of boilerplate lines: cookie banners, privacy / terms links, "enable JavaScript".

C4 drops every line that mentions "javascript" or a policy phrase. That also removes content (an article
about JavaScript, a paragraph about a privacy policy), so here a line goes only when it is short enough
to be page furniture (at most MAX_WORDS words) and:
- contains a policy / cookie phrase (C4's list, plus its counterparts in a few major languages), or
- mentions JavaScript together with enabling / requiring it, or
- consists only of footer link labels ("Privacy | Impressum", "Cookie settings", ...).
Everything else, including blank lines, is left exactly as it was.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_WORDS = 60

POLICY_PHRASES = (
    # C4 (datatrove POLICY_SUBSTRINGS)
    "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies",
    "terms of service", "terms and conditions", "cookie settings", "accept cookies", "accept all cookies",
    # de
    "datenschutzerklärung", "datenschutzhinweise", "verwendet cookies", "nutzt cookies", "setzt cookies",
    "verwendung von cookies", "einsatz von cookies", "cookie-richtlinie", "cookie-einstellungen",
    "nutzungsbedingungen", "cookies zu",
    # fr
    "politique de confidentialité", "utilise des cookies", "utilisation des cookies", "utilisons des cookies",
    "politique de cookies", "politique relative aux cookies", "conditions d'utilisation", "conditions générales d'utilisation",
    # es / pt / it
    "política de privacidad", "política de cookies", "uso de cookies", "utiliza cookies", "utilizamos cookies",
    "usamos cookies", "términos de uso", "condiciones de uso", "política de privacidade", "termos de uso",
    "utiliza cookies", "informativa sulla privacy", "utilizza i cookie", "utilizza cookie", "uso dei cookie",
    "cookie policy", "termini di utilizzo", "termini e condizioni",
    # nl / pl / ru
    "privacybeleid", "privacyverklaring", "cookiebeleid", "gebruikt cookies", "maakt gebruik van cookies",
    "gebruiksvoorwaarden", "polityka prywatności", "polityka cookies", "plików cookie", "pliki cookie",
    "политика конфиденциальности", "использует файлы cookie", "использует cookie", "файлы cookie",
)
JAVASCRIPT_ACTION = re.compile(
    r"javascript.{0,60}?\b(?:enable|disabled|required|turn on|activate|aktivier|deaktiviert|activer|activez|"
    r"désactivé|habilit|activ|ativ|abilit|inschakel|włącz|включ)"
    r"|\b(?:enable|activate|turn on|aktivieren sie|activez|habilite|active|ative|abilita|włącz|включите)\b.{0,40}?javascript",
    re.IGNORECASE,
)
LINK_LABELS = frozenset(
    """privacy | privacy settings | cookies | cookie settings | cookie preferences | manage cookies | imprint |
    legal notice | terms | datenschutz | impressum | agb | cookie-einstellungen | mentions légales |
    confidentialité | gestion des cookies | aviso legal | privacidad | privacidade | aviso de privacidad |
    note legali | privacybeleid | disclaimer | prywatność | конфиденциальность""".replace("\n", " ").split(" | ")
)
_POLICY = re.compile("|".join(re.escape(p) for p in sorted(set(POLICY_PHRASES), key=len, reverse=True)))
# Cheap whole-text test first: most documents contain none of these and are returned untouched.
_TRIGGER = re.compile("|".join([_POLICY.pattern, "javascript", *(re.escape(label) for label in LINK_LABELS)]))
_LINK_SEPARATORS = re.compile(r"\s*[|·•/,]\s*")
# The same test for a whole batch in RE2 (C++, one DFA for the alternation; Python's `re` tries each branch at
# every position and cost ~0.45 s per MB). Case-insensitive matching folds every case pair `str.lower` maps,
# so it finds at least the texts `_TRIGGER` finds in `text.lower()`; the one lowercasing it misses is U+0130
# (İ becomes "i" + a combining dot, which can end a phrase), so texts holding it are candidates too. The
# candidates then take the exact per-text path, which keeps the output identical.
_TRIGGER_RE2 = _TRIGGER.pattern + r"|\x{0130}"


def is_boilerplate_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped or len(stripped.split()) > MAX_WORDS:
        return False
    low = stripped.lower()
    if _POLICY.search(low) or ("javascript" in low and JAVASCRIPT_ACTION.search(low)):
        return True
    parts = [p for p in (p.strip(" .:") for p in _LINK_SEPARATORS.split(low)) if p]
    return bool(parts) and all(p in LINK_LABELS for p in parts)


def remove_boilerplate_lines(text: str) -> tuple[str, int]:
    """Return (text without boilerplate lines, number of lines removed).

    Run it before whitespace normalisation: a removed line can leave two blank lines in a row.
    """
    if not _TRIGGER.search(text.lower()):
        return text, 0
    lines = text.split("\n")
    kept = [line for line in lines if not is_boilerplate_line(line)]
    removed = len(lines) - len(kept)
    return ("\n".join(kept), removed) if removed else (text, 0)


def remove_boilerplate(texts: pa.Array) -> tuple[pa.Array, int]:
    """`remove_boilerplate_lines` over a string array (nulls stay null). RE2 picks the texts, then the lines of
    those texts, that can hold boilerplate (a line without a `_TRIGGER` match never is); only those lines reach
    `is_boilerplate_line`. Returns the array and the number of lines removed."""
    rows = pc.indices_nonzero(_flagged(texts))
    if len(rows) == 0:
        return texts, 0
    lines = pc.split_pattern(texts.take(rows), "\n")
    flat = pc.list_flatten(lines)
    candidates = pc.indices_nonzero(_flagged(flat))
    drop = [i for i, line in zip(candidates.to_pylist(), flat.take(candidates).to_pylist()) if is_boilerplate_line(line)]
    if not drop:
        return texts, 0
    keep = np.ones(len(flat), dtype=bool)
    keep[drop] = False
    # Each flagged text's lines without the dropped ones, joined again (an unchanged text comes back as it was).
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    kept_lines = pa.ListArray.from_arrays(pa.array(kept_before[lines.offsets.to_numpy()], pa.int32()), flat.filter(keep))
    mask = np.zeros(len(texts), dtype=bool)
    mask[rows.to_numpy()] = True
    return pc.replace_with_mask(texts, mask, pc.binary_join(kept_lines, "\n")), len(drop)


def _flagged(texts: pa.Array) -> pa.BooleanArray:
    return pc.fill_null(pc.match_substring_regex(texts, _TRIGGER_RE2, ignore_case=True), False)
