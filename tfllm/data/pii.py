"""Stage 4: personal data replaced by placeholders before anything is learned from it.

The patterns favour precision over recall: a year, a date, a version number or a
time must never become a placeholder. Each pattern only starts where the previous
character cannot continue the match, so a long run of digits or dots is scanned
once, not once per position.
"""

import ipaddress
import re

import apache_beam as beam

from tfllm.data.documents import counter

EMAIL = "<EMAIL>"
IP_ADDRESS = "<IP_ADDRESS>"
PHONE = "<PHONE>"
KINDS = ("email", "ip_address", "phone")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")
# Candidates only; ipaddress decides. IPv6 may end in a dotted IPv4 (::ffff:10.0.0.1),
# so it is replaced before IPv4.
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
                   r"(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?![\w:]|\.\d)")
# Exactly four dotted numbers: 1.2.3 and 1.2.3.4.5 are versions, not addresses.
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.]*\d)")
# +CC then digits in groups (+44 20 7946 0958, +1 (555) 123-4567, +442079460958),
# or the North American forms (555) 123-4567, 555-123-4567 and 555.123.4567 (one
# separator throughout), optionally after a 1- prefix. Dates (2023-01-15), years
# and lists of numbers (1999 2000 2001) fit none of them.
_PHONE = re.compile(
    r"(?<![\w.+-])(?:"
    r"\+\d(?:[ .-]?(?:\d|\(\d{1,4}\)))+"
    r"|(?:1[ .-]?)?(?:\(\d{3}\) ?\d{3}[ .-]|\d{3}([.-])\d{3}\1)\d{4}"
    r")(?![\w-]|\.\d)")
# E.164 numbers have at most 15 digits; fewer than 7 is not a phone number.
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 7, 15


def _is_ip(candidate):
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _is_ipv6(candidate):
    # "ab::cd" is a valid address but far more often C++ or a label.
    return any(c.isdigit() for c in candidate) and _is_ip(candidate)


def _is_phone(candidate):
    return _MIN_PHONE_DIGITS <= sum(c.isdigit() for c in candidate) <= _MAX_PHONE_DIGITS


def _replace(pattern, placeholder, text, accept=None):
    """(text with accepted matches replaced, how many were)."""
    count = 0

    def substitute(match):
        nonlocal count
        if accept and not accept(match.group(0)):
            return match.group(0)
        count += 1
        return placeholder

    return pattern.sub(substitute, text), count


def scrub(text):
    """Returns (text with placeholders, {"email": n, "ip_address": n, "phone": n})."""
    counts = dict.fromkeys(KINDS, 0)
    if "@" in text:
        text, counts["email"] = _replace(_EMAIL, EMAIL, text)
    if "::" in text or text.count(":") >= 7:
        text, counts["ip_address"] = _replace(_IPV6, IP_ADDRESS, text, _is_ipv6)
    if "." in text:
        text, ipv4 = _replace(_IPV4, IP_ADDRESS, text, _is_ip)
        counts["ip_address"] += ipv4
    text, counts["phone"] = _replace(_PHONE, PHONE, text, _is_phone)
    return text, counts


class _Scrub(beam.DoFn):
    def __init__(self):
        self._counters = {kind: counter(f"pii_{kind}") for kind in KINDS}

    def process(self, document):
        text, counts = scrub(document.text)
        text_pair, pair_counts = scrub(document.text_pair)
        for kind in counts:
            if counts[kind] + pair_counts[kind]:
                self._counters[kind].inc(counts[kind] + pair_counts[kind])
        yield document._replace(text=text, text_pair=text_pair)


class ScrubPII(beam.PTransform):
    """PCollection[Document] -> the same documents with e-mails, IPs and phones replaced."""

    def expand(self, documents):
        return documents | "Scrub" >> beam.ParDo(_Scrub())
