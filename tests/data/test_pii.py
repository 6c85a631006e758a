import pytest

from tests.data.beam_helpers import docs, run_transform
from tfllm.data.pii import ScrubPII, scrub


@pytest.mark.parametrize("text, expected", [
    ("write to john.doe+news@example.co.uk today", "write to <EMAIL> today"),
    ("host 192.168.1.20 is up", "host <IP_ADDRESS> is up"),
    ("v6 fe80::1ff:fe23:4567:890a here", "v6 <IP_ADDRESS> here"),
    ("call (555) 123-4567 now", "call <PHONE> now"),
    ("or 555-123-4567.", "or <PHONE>."),
    ("or 555.123.4567", "or <PHONE>"),
    ("ring +44 20 7946 0958", "ring <PHONE>"),
])
def test_personal_data_is_replaced(text, expected):
    assert scrub(text)[0] == expected


@pytest.mark.parametrize("text", [
    "released in 1999 with 42 cats",
    "on 2023-01-15 at 12:30:45",
    "version 1.2.3 and 999.1.1.1 and pi 3.14159",
    "the ratio 3:2 and C++ and a@b",
])
def test_ordinary_numbers_are_left_alone(text):
    assert scrub(text) == (text, {"email": 0, "ip_address": 0, "phone": 0})


def test_transform_counts_replacements():
    counters = run_transform(ScrubPII(), docs("a@example.com b@example.org", "10.0.0.1", "x"),
                             ["<EMAIL> <EMAIL>", "<IP_ADDRESS>", "x"])
    assert counters["pii_email"] == 2 and counters["pii_ip_address"] == 1
