"""C4's line rules: lines that are not prose are removed before the document rules run.

Raffel et al. 2020, as implemented by TFDS `tensorflow_datasets/text/c4_utils.py`
(`clean_page`): a line goes if it holds a word over 1,000 characters, does not end
in a terminal mark (or ends in an ellipsis), has fewer than 5 words, mentions
javascript, or is a cookie / terms / privacy-policy notice; Wikipedia-style
citation marks are cut out of every line. The page-level C4 rules (lorem ipsum,
curly braces, bad words, at least 3 sentences) are document rules in `filters`.

C4 strips and rejoins the kept lines with "\n"; so does this module, and only when
a line was removed or changed, so documents that pass untouched keep their layout.
"""

import re

LINE_RULE_NAMES = ("c4_long_word_lines", "c4_citations", "c4_no_end_mark_lines",
                   "c4_short_lines", "c4_javascript_lines", "c4_policy_lines")

_END_MARKS = (".", "?", "!", '"')
_ELLIPSIS = "..."
_POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                      "use of cookies", "use cookies")
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")


def _line_verdict(line, config, enabled):
    """(the line as kept, or None, and the rule that removed or edited it)."""
    if "c4_long_word_lines" in enabled and any(
            len(word) > config.max_word_length for word in line.split()):
        return None, "c4_long_word_lines"
    edit = None
    if "c4_citations" in enabled:
        cited = _CITATION.sub("", line)
        if cited != line:
            line, edit = cited, "c4_citations"
    if "c4_no_end_mark_lines" in enabled and (not line.endswith(_END_MARKS)
                                              or line.endswith(_ELLIPSIS)):
        return None, "c4_no_end_mark_lines"
    if "c4_short_lines" in enabled and len(line.split()) < config.min_words_per_line:
        return None, "c4_short_lines"
    lower = line.lower()
    if "c4_javascript_lines" in enabled and "javascript" in lower:
        return None, "c4_javascript_lines"
    if "c4_policy_lines" in enabled and any(p in lower for p in _POLICY_SUBSTRINGS):
        return None, "c4_policy_lines"
    return line, edit


def remove_lines(text, config):
    """(text after the enabled line rules, {rule: lines it removed or edited})."""
    enabled = [name for name in LINE_RULE_NAMES if name not in config.disabled]
    if not enabled:
        return text, {}
    kept, touched = [], {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        verdict, rule = _line_verdict(stripped, config, enabled)
        if rule:
            touched[rule] = touched.get(rule, 0) + 1
        if verdict is not None:
            kept.append(verdict)
    return ("\n".join(kept).strip() if touched else text), touched
