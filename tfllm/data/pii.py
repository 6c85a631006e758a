"""Stage 4: personal data replaced by placeholders before anything is learned from it."""

import ipaddress
import re

import apache_beam as beam

from tfllm.data.documents import counter

EMAIL = "<EMAIL>"
IP_ADDRESS = "<IP_ADDRESS>"
PHONE = "<PHONE>"

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# +CC forms, (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567.
_PHONE = re.compile(
    r"(?<![\w.+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"
    r"(?![\w-]|\.\d)")
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _valid_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _replace(pattern, placeholder, text, accept=lambda match: True):
    count = 0

    def substitute(match):
        nonlocal count
        if not accept(match.group(0)):
            return match.group(0)
        count += 1
        return placeholder

    return pattern.sub(substitute, text), count


def _is_phone(candidate):
    digits = sum(c.isdigit() for c in candidate)
    return 7 <= digits <= 15 and not _DATE_LIKE.match(candidate)


def scrub(text):
    """Returns (text with placeholders, {"email": n, "ip_address": n, "phone": n})."""
    text, emails = _replace(_EMAIL, EMAIL, text)
    text, ipv4 = _replace(_IPV4, IP_ADDRESS, text, _valid_ip)
    text, ipv6 = _replace(_IPV6, IP_ADDRESS, text,
                          lambda s: s.count(":") >= 2 and _valid_ip(s) and any(
                              c.isdigit() for c in s))
    text, phones = _replace(_PHONE, PHONE, text, _is_phone)
    return text, {"email": emails, "ip_address": ipv4 + ipv6, "phone": phones}


class _Scrub(beam.DoFn):
    def __init__(self):
        self._counters = {kind: counter(f"pii_{kind}") for kind in ("email", "ip_address",
                                                                    "phone")}

    def process(self, document):
        text, counts = scrub(document.text)
        for kind, count in counts.items():
            if count:
                self._counters[kind].inc(count)
        yield document._replace(text=text) if text != document.text else document


class ScrubPII(beam.PTransform):
    def expand(self, documents):
        return documents | "Scrub" >> beam.ParDo(_Scrub())
