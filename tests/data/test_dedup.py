from tests.data.beam_helpers import docs, run_transform
from tfllm.data.dedup import DeduplicateDocuments, DeduplicateLines, normalized_hash
from tfllm.data.documents import Document


def test_normalized_hash_ignores_case_punctuation_and_spacing():
    assert normalized_hash("Hello,  World!") == normalized_hash("hello world")
    assert normalized_hash(" Hello\n\tWorld ") == normalized_hash("hello world")
    assert normalized_hash("hello world") != normalized_hash("hello word")


def test_exact_duplicates_keep_the_smallest_id():
    documents = docs("Alpha beta.", "gamma", "ALPHA   beta", "alpha beta!")
    counters = run_transform(DeduplicateDocuments(), documents, ["Alpha beta.", "gamma"])
    assert counters["duplicates_exact_documents"] == 2


def test_the_kept_copy_does_not_depend_on_input_order():
    documents = [Document("z9", "Same text."), Document("b2", "same TEXT"),
                 Document("m5", "same text!")]
    for ordered in (documents, documents[::-1]):
        counters = run_transform(DeduplicateDocuments(), ordered, ["same TEXT"])
        assert counters["duplicates_exact_documents"] == 2


def test_repeated_lines_survive_only_at_their_first_place():
    banner = "Subscribe to our newsletter for more!"
    documents = docs(f"first story line one\n{banner}", f"{banner}\nsecond story here",
                     f"{banner}", "short\nshort\nunique enough line of text")
    counters = run_transform(DeduplicateLines(min_line_chars=10), documents, [
        f"first story line one\n{banner}", "second story here",
        "short\nshort\nunique enough line of text"])
    assert counters["duplicate_lines_removed"] == 2
    assert counters["dropped_empty_after_line_dedup"] == 1


def test_lines_match_after_case_and_whitespace_and_repeat_within_a_document():
    line = "All rights reserved by the publisher."
    documents = [Document("b", "  ALL rights   reserved by the publisher.\nbody of b here"),
                 Document("a", f"{line}\nbody of a here\n{line}"),
                 Document("c", "Thanks for reading!\nThanks for reading!")]
    counters = run_transform(DeduplicateLines(), documents, [
        f"{line}\nbody of a here", "body of b here",
        "Thanks for reading!\nThanks for reading!"])  # 19 characters: under the default 20
    assert counters["duplicate_lines_removed"] == 2
    assert "dropped_empty_after_line_dedup" not in counters
