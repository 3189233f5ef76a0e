"""PII replacement: e-mail addresses and public IP addresses become `<EMAIL>` and `<IP>`.

Private, loopback, link-local, documentation and other reserved addresses are not personal data and
stay (`ipaddress`'s `is_global`). An Arrow regex kernel picks the few documents that can contain either,
so the Python substitution runs only on those.
"""
from __future__ import annotations

import ipaddress
import re

import pyarrow as pa
import pyarrow.compute as pc

EMAIL_PLACEHOLDER = "<EMAIL>"
IP_PLACEHOLDER = "<IP>"

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d|\w)"
IPV6 = r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
IP = re.compile(f"{IPV4}|{IPV6}")
CANDIDATE = r"@|\d\.\d+\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]*:"  # RE2 syntax, for pyarrow.compute


def _is_public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False  # "12:30:45", "1:2:3" and the like


def replace_pii(text: str) -> tuple[str, int, int]:
    """Return (text with placeholders, e-mails replaced, IPs replaced)."""
    text, n_email = EMAIL.subn(EMAIL_PLACEHOLDER, text)
    n_ip = 0

    def ip(match: re.Match) -> str:
        nonlocal n_ip
        if _is_public(match.group()):
            n_ip += 1
            return IP_PLACEHOLDER
        return match.group()

    text = IP.sub(ip, text)
    return text, n_email, n_ip


def replace_pii_batch(texts: pa.Array) -> tuple[pa.Array, int, int]:
    """Replace PII in a string array; returns (new array, e-mails replaced, IPs replaced)."""
    candidates = pc.fill_null(pc.match_substring_regex(texts, CANDIDATE), False)
    rows = pc.indices_nonzero(candidates).to_pylist()
    if not rows:
        return texts, 0, 0
    values = texts.to_pylist()
    n_email = n_ip = 0
    for i in rows:
        values[i], e, p = replace_pii(values[i])
        n_email += e
        n_ip += p
    return pa.array(values, type=texts.type), n_email, n_ip
