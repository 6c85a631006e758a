"""tensorflow-text's WordPiece learner with its threshold search made cheaper.

The library's `learn` binary-searches the count threshold that gives the wanted
vocabulary size, and every step reruns all of `learn_with_thresh`: four passes over
the words, in pure Python. The first pass (every substring of every word, with the
prefix counts taken off) does not depend on the threshold, so it is computed once
here and only filtered at each step; it was a third of the learner's time. The
search, the later passes and every helper are the library's own, so the vocabulary
is the library's, token for token (tests/test_tokenizers.py compares them).
"""

from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as lib

# keras-hub's `compute_word_piece_vocabulary` calls the learner with these defaults.
_DEFAULTS = dict(upper_thresh=int(1e7), lower_thresh=10, num_iterations=4,
                 max_input_tokens=int(5e6), max_token_length=50, max_unique_chars=1000,
                 slack_ratio=0.05, include_joiner_token=True, joiner="##")


def learn(word_counts, vocab_size, reserved_tokens):
    """The vocabulary `lib.learn(word_counts, vocab_size, reserved_tokens)` returns."""
    word_counts = list(word_counts)
    params = lib.Params(vocab_size=vocab_size, reserved_tokens=reserved_tokens,
                        **_DEFAULTS)
    upper, lower = lib.get_search_threshs(word_counts, params.upper_thresh,
                                          params.lower_thresh)
    words = lib.get_input_words(word_counts, params.reserved_tokens,
                                params.max_token_length)
    allowed = lib.get_allowed_chars(words, params.max_unique_chars)
    words = lib.filter_input_words(words, allowed, params.max_input_tokens)
    return _ThresholdSearch(words, params).run(lower, upper)


class _ThresholdSearch:
    def __init__(self, word_counts, params):
        self._words = word_counts
        self._params = params
        self._chars = lib.extract_char_tokens(word_counts)
        self._first_pass = _surviving_counts(word_counts, None, params)

    def run(self, lower, upper):
        """`lib.learn_binary_search`, as a loop."""
        params = self._params
        slack = max(params.slack_ratio * params.vocab_size, 0)
        while True:
            thresh = (upper + lower) // 2
            vocabulary = self._vocabulary(thresh)
            size = len(vocabulary)
            if (size <= params.vocab_size and params.vocab_size - size <= slack) or \
                    lower >= upper or thresh <= 1:
                return vocabulary
            if size > params.vocab_size:
                lower = thresh + 1
            else:
                upper = thresh - 1

    def _vocabulary(self, thresh):
        """`lib.learn_with_thresh(words, thresh, params)`."""
        params = self._params
        tokens = {}
        for iteration in range(params.num_iterations):
            counts = (self._first_pass if iteration == 0 else
                      _surviving_counts(self._words, tokens, params))
            tokens = lib.ensure_all_tokens_exist(
                self._chars, {t: c for t, c in counts.items() if c >= thresh},
                params.include_joiner_token, params.joiner)
        return lib.generate_final_vocabulary(params.reserved_tokens, self._chars, tokens)


def _surviving_counts(word_counts, tokens, params):
    """One pass of `learn_with_thresh` before its threshold: each candidate
    subtoken's count once the counts of longer subtokens it prefixes are taken off.
    The first pass (`tokens` None) counts substrings at every start, later ones only
    at the starts the current `tokens` split the word at."""
    joiner = params.joiner if params.include_joiner_token else ""
    subtokens = [dict() for _ in range(params.max_token_length + 1)]
    for word, count in word_counts:
        if tokens is None:
            split_indices = range(1, len(word) + 1)
        else:
            split_indices = lib.get_split_indices(word, tokens,
                                                  params.include_joiner_token,
                                                  params.joiner)
            if not split_indices:
                continue
        start = 0
        for index in split_indices:
            prefix = joiner if start > 0 else ""
            for end in range(start + 1, len(word) + 1):
                table = subtokens[end - start]
                subtoken = prefix + word[start:end]
                table[subtoken] = table.get(subtoken, 0) + count
            start = index
    surviving = {}
    skip = len(joiner)
    for length in range(params.max_token_length, 0, -1):
        for token, count in subtokens[length].items():
            surviving[token] = count
            shift = skip if len(token) > length else 0
            for i in range(1 + shift, length + shift):
                shorter = subtokens[i - shift]
                prefix = token[:i]
                if prefix in shorter:
                    shorter[prefix] -= count
    return surviving
