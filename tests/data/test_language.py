"""Language identification: other languages dropped and counted by language, the
language and score kept with each document and in the clean corpus."""

import glob
import gzip
import json

import apache_beam as beam
import pytest

from tests.data.beam_helpers import docs, run_transform
from tfllm.data import job
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.gpt_examples import GptExampleConfig
from tfllm.data.language import IdentifyLanguage, LanguageConfig
from tfllm.data.sources import SourceConfig
from tfllm.errors import ConfigError

ENGLISH = ["Computers make very fast, very accurate mistakes.",
           "Work is the curse of the drinking classes.",
           "The world is a comedy to those that think, a tragedy to those that feel."]
ITALIAN = ["Il cane è il migliore amico dell'uomo, ma il gatto non è d'accordo.",
           "Non tutte le ciambelle riescono col buco, disse il pasticcere."]
GERMAN = ["Wer nicht wagt, der nicht gewinnt, sagte mein Großvater immer wieder."]


def test_other_languages_are_dropped_and_counted_by_language():
    counters = run_transform(beam.ParDo(IdentifyLanguage(LanguageConfig(("en",)))),
                             docs(*ENGLISH, *ITALIAN, *GERMAN), ENGLISH)
    assert counters["kept_by_language"] == 3
    assert counters["dropped_language_it"] == 2 and counters["dropped_language_de"] == 1


def test_a_list_of_languages_and_the_score_threshold():
    run_transform(beam.ParDo(IdentifyLanguage(LanguageConfig(("en", "it")))),
                  docs(*ENGLISH, *ITALIAN, *GERMAN), ENGLISH + ITALIAN)
    # Scored en 0.87 and 0.9998 by the identifier.
    weak, strong = ENGLISH[0], ENGLISH[2]
    counters = run_transform(beam.ParDo(IdentifyLanguage(LanguageConfig(("en",), 0.99))),
                             docs(weak, strong), [strong])
    assert counters["dropped_language_score"] == 1


@pytest.mark.parametrize("languages, score, message", [
    (("en", "xx"), 0.5, "unknown language code(s) xx"),
    (("en",), 1.5, "--min_language_score must be in [0, 1]")])
def test_bad_settings_are_named(languages, score, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        LanguageConfig(languages, score)


def test_the_clean_corpus_records_language_and_score(tmp_path):
    source = tmp_path / "quotes.txt"
    source.write_text("\n%\n".join(ENGLISH * 2 + ITALIAN) + "\n")
    config = job.JobConfig(
        kind="gpt", output_dir=str(tmp_path / "out"),
        source=SourceConfig(patterns=(str(source),), split="delimiter"),
        language=LanguageConfig(("en",)),
        filters=filter_config_from_overrides({"min_words": "3", "min_stop_words": "0"},
                                             ["top_ngrams", "c4_lines", "fineweb"]),
        dedup=job.DedupConfig(exact_documents=False, lines=False, near=False),
        examples=GptExampleConfig(sequence_length=16), vocab_size=300, num_shards=1,
        eval_fraction=0.0)
    manifest = job.run(config, report=lambda line: None)
    assert manifest.statistics["dropped_language_it"] == 2
    assert manifest.statistics["kept_by_language"] == 6
    records = [json.loads(line) for path in glob.glob(str(tmp_path / "out" / "clean" / "*.gz"))
               for line in gzip.open(path, "rt")]
    assert len(records) == 6 and {r["language"] for r in records} == {"en"}
    assert all(0.5 <= r["language_score"] <= 1.0 for r in records)
