"""PII replacement: e-mails and public IPs become placeholders; private and reserved addresses stay."""
from __future__ import annotations

import pyarrow as pa

from pipeline.filter.pii import replace_pii, replace_pii_batch


def test_email_addresses_are_replaced_and_counted():
    text, n_email, n_ip = replace_pii("Write to anna.berg+news@mail.example.co.uk or to bob@host.io.")
    assert text == "Write to <EMAIL> or to <EMAIL>."
    assert (n_email, n_ip) == (2, 0)


def test_public_ipv4_and_ipv6_addresses_are_replaced():
    text, n_email, n_ip = replace_pii("Servers 8.8.8.8, 151.101.1.69 and 2606:4700:4700::1111 answered.")
    assert text == "Servers <IP>, <IP> and <IP> answered."
    assert (n_email, n_ip) == (0, 3)


def test_private_and_reserved_addresses_are_left_alone():
    text = "Routers 192.168.1.1, 10.0.0.7, 127.0.0.1, 172.16.4.2, docs 192.0.2.10 and 2001:db8::1, ::1."
    assert replace_pii(text) == (text, 0, 0)


def test_numbers_that_only_look_like_addresses_are_left_alone():
    text = "Version 1.2.3.4.5 shipped at 12:30:45 on 3.5.2024; the score was 256.1.1.1 points, a@b."
    assert replace_pii(text) == (text, 0, 0)


def test_batch_replacement_touches_only_rows_with_pii():
    texts = pa.array(["no pii here", "mail me: x.y@example.org", None, "host 9.9.9.9"])
    out, n_email, n_ip = replace_pii_batch(texts)
    assert out.to_pylist() == ["no pii here", "mail me: <EMAIL>", None, "host <IP>"]
    assert (n_email, n_ip) == (1, 1)
