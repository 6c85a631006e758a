"""Extractive QA inputs: SQuAD v1.1 and v2.0 files (unanswerable questions, contexts
longer than a window), bad answers, the windows' invariants, span decoding, SQuAD's
metrics and the sentence-overlap baseline."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfllm.data import job, readers, schema
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.qa_examples import QaExampleConfig
from tfllm.data.sources import SourceConfig
from tfllm.errors import ConfigError
from tfllm.evaluation.baselines import overlap_sentence
from tfllm.evaluation.squad import normalize_answer, squad_metrics, token_f1
from tfllm.tasks.question_answering import split_questions
from tfllm.text import tokenizers
from tfllm.text.spans import QaWindows, answer_positions, best_spans

SEQUENCE_LENGTH, DOC_STRIDE, MAX_QUERY = 48, 12, 10
LONG = ("The river Nile flows north through eleven countries of eastern Africa. "
        "Its longest tributary, the White Nile, rises in the Great Lakes region. "
        "The Blue Nile begins at Lake Tana in Ethiopia and joins it at Khartoum, "
        "where the two rivers become one and continue to the Mediterranean Sea.")
SHORT = "Paris is the capital of France; its café culture is famous."


def _squad(version, paragraphs):
    return {"version": version, "data": [{"title": "t", "paragraphs": paragraphs}]}


def _qa(qid, question, context, answer=None, impossible=None):
    qa = {"id": qid, "question": question, "answers": []}
    if answer is not None:
        qa["answers"] = [{"text": answer, "answer_start": context.index(answer)}]
    if impossible is not None:
        qa["is_impossible"] = impossible
    return qa


V1 = _squad("1.1", [
    {"context": LONG, "qas": [_qa("a1", "Where does the Blue Nile begin?", LONG,
                                  "at Lake Tana in Ethiopia"),
                              _qa("a2", "Which sea does it reach?", LONG, "the Mediterranean Sea")]},
    {"context": SHORT, "qas": [_qa("a3", "What is the capital of France?", SHORT, "Paris")]}])
V2 = _squad("v2.0", [
    {"context": SHORT, "qas": [_qa("b1", "What culture is famous?", SHORT, "café culture",
                                   impossible=False),
                               _qa("b2", "What is the capital of Spain?", SHORT,
                                   impossible=True)]},
    {"context": LONG, "qas": [_qa("b3", "Where do the two rivers become one?", LONG,
                                  "Khartoum", impossible=False)]}])


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _job(tmp_path, path, name="out", max_bad_rows=0, tokenizer=""):
    return job.JobConfig(
        kind="qa", output_dir=str(tmp_path / name),
        source=SourceConfig(patterns=(path,), format="squad"),
        filters=filter_config_from_overrides({}, ["all"]), dedup=job.DedupConfig(near=False),
        examples=QaExampleConfig(SEQUENCE_LENGTH, DOC_STRIDE, MAX_QUERY), vocab_size=100,
        num_shards=1, eval_fraction=0.0, max_bad_rows=max_bad_rows, tokenizer=tokenizer)


def _windows(data_dir):
    features = readers.load_manifest(data_dir, "train").schema
    rows = []
    for path in readers.split_files(data_dir, "train"):
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            rows.append(schema.parse_example(features, record.numpy()))
    return rows


@pytest.fixture(scope="module")
def bert_tokenizer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tokenizer")
    texts = [LONG, SHORT] * 3 + ["What where which who does is the of Spain culture"]
    return tokenizers.load_tokenizer(tokenizers.train_tokenizer("bert", texts, 200,
                                                                str(directory)))


@pytest.mark.parametrize("data", [V1, V2], ids=["v1.1", "v2.0"])
def test_squad_files_become_labelled_windows_that_point_at_their_answers(tmp_path, data):
    config = _job(tmp_path, _write(tmp_path, "squad.json", data))
    manifest = job.run(config, report=lambda line: None)
    assert manifest.task["version_2_with_negative"] == (data is V2)
    stats = manifest.statistics
    assert stats["qa_questions_with_several_windows"] >= 1  # LONG needs several windows
    answers = {qa["id"]: qa for p in data["data"][0]["paragraphs"] for qa in p["qas"]}
    tokenizer = tokenizers.load_tokenizer(os.path.join(config.output_dir, "vocab.txt"))
    windows = QaWindows(tokenizer, SEQUENCE_LENGTH, DOC_STRIDE, MAX_QUERY)
    labelled = {}
    for row in _windows(config.output_dir):
        question, context = row["question"][0].decode(), row["context"][0].decode()
        label = json.loads(row["answers"][0])
        start, end = int(row["start_positions"][0]), int(row["end_positions"][0])
        if not label["answers"]:
            assert (start, end) == (0, 0)  # unanswerable: every window points at [CLS]
            continue
        if start:
            number = int(row["window"][0])
            computed = {k: v.numpy() for k, v in windows(tf.constant([question]),
                                                         tf.constant([context])).items()}
            assert (computed["token_ids"][number] == row["input_ids"]).all()
            data_bytes = context.encode()
            text = data_bytes[computed["starts"][number][start]:
                              computed["ends"][number][end]].decode()
            labelled[question] = text
            assert (row["segment_ids"][start:end + 1] == 1).all()
    expected = {qa["question"]: qa["answers"][0]["text"] for qa in answers.values()
                if qa["answers"]}
    assert labelled == expected  # every answer labelled in some window, exactly
    questions, contexts, labels = split_questions(config.output_dir, "train")
    assert sorted(questions) == sorted(qa["question"] for qa in answers.values())


def test_an_answer_that_is_not_at_its_offset_is_named_with_its_line(tmp_path):
    bad = json.loads(json.dumps(V1))
    bad["data"][0]["paragraphs"][1]["qas"][0]["answers"][0]["answer_start"] = 3
    path = _write(tmp_path, "bad.json", bad)
    with open(path) as f:
        line = next(n for n, text in enumerate(f, 1) if '"a3"' in text)
    with pytest.raises(ConfigError, match=rf"{path} line {line}: question 'a3': answer "
                                          r"'Paris' does not match the context at "
                                          r"answer_start 3 \('is is'\)"):
        job.run(_job(tmp_path, path), report=lambda line: None)
    assert not os.path.exists(tmp_path / "out")  # nothing half-written
    manifest = job.run(_job(tmp_path, path, max_bad_rows=1), report=lambda line: None)
    assert manifest.statistics["bad_rows"] == 1 and manifest.clean_corpus["documents"] == 2


def test_a_file_that_is_not_squad_json_is_a_bad_row(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"data": [\n  {"paragraphs": [}\n')
    with pytest.raises(ConfigError, match=rf"{path} line 2: not valid JSON"):
        job.run(_job(tmp_path, str(path)), report=lambda line: None)
    path.write_text('{"version": "1.1", "articles": []}')
    with pytest.raises(ConfigError, match="line 1: not SQuAD JSON"):
        job.run(_job(tmp_path, str(path)), report=lambda line: None)


def test_windows_cover_the_context_once_each_by_max_context(bert_tokenizer):
    windows = QaWindows(bert_tokenizer, SEQUENCE_LENGTH, DOC_STRIDE, MAX_QUERY)
    questions = ["Where does the Blue Nile begin?", "What is the capital of France?"]
    out = {k: v.numpy() for k, v in windows(tf.constant(questions),
                                           tf.constant([LONG, SHORT])).items()}
    pieces = windows.context_pieces(tf.constant([LONG, SHORT]))
    for example, context in enumerate((LONG, SHORT)):
        rows = np.flatnonzero(out["example"] == example)
        ids, starts = pieces[0][example].numpy(), pieces[1][example].numpy()
        seen, owners = {}, {}
        for row in rows:
            context_positions = np.flatnonzero(out["starts"][row] >= 0)
            assert (out["segment_ids"][row][context_positions] == 1).all()
            question_length = context_positions[0] - 2  # [CLS] question [SEP]
            assert (out["segment_ids"][row][:question_length + 2] == 0).all()
            for position in context_positions:
                key = (out["starts"][row][position], out["ends"][row][position],
                       out["token_ids"][row][position])
                seen.setdefault(key, 0)
                seen[key] += 1
                if out["max_context"][row][position]:
                    owners[key] = owners.get(key, 0) + 1
        # Every piece of the context sits in a window, and exactly one window owns it
        # (pieces of a word share its offsets, so they are counted with their word).
        expected = {}
        for index, (piece, start) in enumerate(zip(ids, starts)):
            key = (start, pieces[2][example].numpy()[index], piece)
            expected[key] = expected.get(key, 0) + 1
        assert set(seen) == set(expected)
        assert all(owners.get(key, 0) >= count for key, count in expected.items())
        if len(rows) > 1:
            first_starts = [out["starts"][row][np.flatnonzero(out["starts"][row] >= 0)[0]]
                            for row in rows]
            assert first_starts == sorted(first_starts)  # windows advance through the text
        for start, end in zip(starts, pieces[2][example].numpy()):
            word = context.encode()[start:end].decode()
            assert word.strip() == word and word  # offsets cut whole words


def _global_logits(out, per_token_start, per_token_end, starts_of):
    """Window logits that depend only on which context piece sits at a position."""
    start_logits = np.full(out["token_ids"].shape, -5.0, np.float32)
    end_logits = np.full(out["token_ids"].shape, -5.0, np.float32)
    for row in range(len(out["token_ids"])):
        for position in np.flatnonzero(out["starts"][row] >= 0):
            index = starts_of[(out["starts"][row][position], out["token_ids"][row][position])]
            start_logits[row, position] = per_token_start[index]
            end_logits[row, position] = per_token_end[index]
    return start_logits, end_logits


def test_windowed_spans_equal_one_window_over_the_whole_context(bert_tokenizer):
    rng = np.random.default_rng(0)
    question = tf.constant(["Where does the Blue Nile begin?"])
    ids, starts, ends = (p[0].numpy() for p in QaWindows(
        bert_tokenizer, 256, 8, MAX_QUERY).context_pieces(tf.constant([LONG])))
    # Pieces of one word share offsets; the first piece of each word stands for it.
    starts_of = {}
    for index, (start, piece) in enumerate(zip(starts, ids)):
        starts_of.setdefault((start, piece), index)
    for trial in range(5):
        per_start, per_end = rng.normal(size=(2, len(ids))).astype(np.float32) * 3
        answers = []
        for length, stride in ((256, 8), (SEQUENCE_LENGTH, DOC_STRIDE), (24, 3)):
            windows = QaWindows(bert_tokenizer, length, stride, MAX_QUERY)
            out = {k: v.numpy() for k, v in windows(question, tf.constant([LONG])).items()}
            assert (len(out["example"]) == 1) == (length == 256)
            logits = _global_logits(out, per_start, per_end, starts_of)
            spans = best_spans(tf.constant(logits[0]), tf.constant(logits[1]),
                               {k: tf.constant(v) for k, v in out.items()}, 1, 6)
            answers.append((int(spans["start"][0]), int(spans["end"][0]),
                            round(float(spans["score"][0]), 4)))
        assert answers[0] == answers[1] == answers[2], trial


def test_answer_positions_need_the_whole_answer_in_the_window():
    starts = [-1, -1, 0, 4, 4, 9, -1]
    ends = [-1, -1, 3, 8, 8, 12, -1]
    assert answer_positions(starts, ends, 4, 8) == (3, 4)  # a word of two pieces
    assert answer_positions(starts, ends, 0, 12) == (2, 5)
    assert answer_positions(starts, ends, 9, 14) == (0, 0)  # runs past the window
    assert answer_positions([-1, 5, 9], [-1, 8, 12], 0, 3) == (0, 0)  # starts before it


def test_squad_metrics_follow_the_official_normalisation():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple a day") == "apple day"
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    metrics = squad_metrics([["Paris", "paris, France"], [], ["Lake Tana"]],
                            ["Paris.", "", "in Lake Tana in Ethiopia"])
    assert metrics["exact"] == pytest.approx(2 / 3)
    assert metrics["has_answer_exact"] == 0.5 and metrics["no_answer_exact"] == 1.0
    f1 = 2 * (2 / 5) * 1 / (2 / 5 + 1)  # 2 shared of 5 predicted, 2 gold tokens
    assert metrics["f1"] == pytest.approx((1 + 1 + f1) / 3)
    assert squad_metrics([[]], ["something"])["f1"] == 0.0


def test_overlap_sentence_baseline():
    context = "Biont is a unit of matter. By person one means a human being."
    assert overlap_sentence("What is meant by person?", context, True) == \
        "By person one means a human being."
    assert overlap_sentence("What is a dog?", context, True) == ""
    assert overlap_sentence("What is a dog?", context, False) == "Biont is a unit of matter."


def test_an_empty_context_has_no_answer_and_finite_scores(bert_tokenizer):
    from tfllm.models import configs
    from tfllm.models.bert import BertEncoder
    from tfllm.models.span_extractor import SpanExtractor
    from tfllm.export.modules import QaModule

    config = configs.override(configs.get_preset("bert_tiny"), {
        "vocab_size": bert_tokenizer.vocab_size, "max_sequence_length": SEQUENCE_LENGTH})
    module = QaModule(SpanExtractor(BertEncoder(config)), bert_tokenizer, DOC_STRIDE,
                      MAX_QUERY, max_answer_length=5, allow_no_answer=False)
    out = module.serving_default(tf.constant(["Where?", "What is the capital of France?"]),
                                 tf.constant(["", SHORT]))
    assert out["no_answer"].numpy().tolist() == [True, False]
    assert out["answer"].numpy()[0] == b"" and out["start"].numpy()[0] == -1
    assert np.isfinite(out["score"].numpy()).all()
    start, end = out["start"].numpy()[1], out["end"].numpy()[1]
    assert SHORT[start:end] == out["answer"].numpy()[1].decode()


def test_a_dev_file_makes_the_eval_split(tmp_path):
    import dataclasses

    train, dev = _write(tmp_path, "train.json", V1), _write(tmp_path, "dev.json", V2)
    config = dataclasses.replace(_job(tmp_path, train), eval_inputs=(dev,),
                                 eval_fraction=0.5)  # not used with a dev file
    manifest = job.run(config, report=lambda line: None)
    assert [i["path"] for i in manifest.inputs if i.get("eval")] == [dev]
    for split, data in (("train", V1), ("eval", V2)):
        questions = split_questions(config.output_dir, split)[0]
        assert sorted(questions) == sorted(qa["question"] for p in data["data"][0]["paragraphs"]
                                           for qa in p["qas"])
    both = dataclasses.replace(config, eval_inputs=(str(tmp_path / "*.json"),),
                               output_dir=str(tmp_path / "other"))
    with pytest.raises(ConfigError, match="matched by both --input and --eval_input"):
        job.run(both, report=lambda line: None)


@pytest.mark.parametrize("stride, query, message", [
    (40, 10, r"--doc_stride must be in \[1, 35\]"),
    (0, 10, r"--doc_stride must be in \[1, 35\]"),
    (8, 46, "--max_query_length=46 leaves no room"),
])
def test_windows_that_cannot_hold_a_question_and_context_are_refused(stride, query, message):
    with pytest.raises(ConfigError, match=message):
        QaExampleConfig(SEQUENCE_LENGTH, stride, query)
