import pytest

from tests.data.beam_helpers import docs, run_transform
from tfllm.data.pii import ScrubPII, scrub


@pytest.mark.parametrize("text, expected, kind", [
    ("write to john.doe+news@example.co.uk today", "write to <EMAIL> today", "email"),
    ("<a_b-c@mail.example.org>.", "<<EMAIL>>.", "email"),
    ("host 192.168.1.20 is up", "host <IP_ADDRESS> is up", "ip_address"),
    ("see http://10.0.0.1:8080/ now.", "see http://<IP_ADDRESS>:8080/ now.", "ip_address"),
    ("v6 fe80::1ff:fe23:4567:890a here", "v6 <IP_ADDRESS> here", "ip_address"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<IP_ADDRESS>", "ip_address"),
    ("loopback ::1 and mapped ::ffff:10.0.0.1.", "loopback <IP_ADDRESS> and mapped "
     "<IP_ADDRESS>.", "ip_address"),
    ("call (555) 123-4567 now", "call <PHONE> now", "phone"),
    ("or 555-123-4567.", "or <PHONE>.", "phone"),
    ("or 555.123.4567", "or <PHONE>", "phone"),
    ("toll free 1-800-555-1234", "toll free <PHONE>", "phone"),
    ("ring +44 20 7946 0958", "ring <PHONE>", "phone"),
    ("ring +44 (0)20 7946 0958", "ring <PHONE>", "phone"),
    ("ring +1 (555) 123-4567", "ring <PHONE>", "phone"),
    ("ring +33 1 23 45 67 89 or +442079460958", "ring <PHONE> or <PHONE>", "phone"),
])
def test_personal_data_is_replaced_and_counted(text, expected, kind):
    scrubbed, counts = scrub(text)
    assert scrubbed == expected
    assert counts[kind] == expected.count({"email": "<EMAIL>", "ip_address": "<IP_ADDRESS>",
                                           "phone": "<PHONE>"}[kind])
    assert sum(counts.values()) == counts[kind]


@pytest.mark.parametrize("text", [
    "released in 1999 with 42 cats",
    "the years 1999 2000 2001 and 1999-2004",
    "on 2023-01-15 at 12:30:45, or 2023.01.15",
    "version 1.2.3, 1.2.3.4.5 and 999.1.1.1 and pi 3.14159",
    "the ratio 3:2 and C++ and a@b and std::vector and dead::beef",
    "mac 00:1A:2B:3C:4D:5E",
    "ISBN 978-3-16-148410-0 and 555-123.4567 and 555-123-45678",
    "plain 1234567 and 12345 and +5 points",
])
def test_ordinary_text_is_left_alone(text):
    assert scrub(text) == (text, {"email": 0, "ip_address": 0, "phone": 0})


def test_transform_counts_replacements():
    documents = docs("a@example.com b@example.org", "10.0.0.1 and ::1", "(555) 123-4567", "x")
    expected = ["<EMAIL> <EMAIL>", "<IP_ADDRESS> and <IP_ADDRESS>", "<PHONE>", "x"]
    counters = run_transform(ScrubPII(), documents, expected)
    assert counters == {"pii_email": 2, "pii_ip_address": 2, "pii_phone": 1}
