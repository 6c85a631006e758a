"""datatrove (Hugging Face's data pipeline) running the rules of benchmarks.preprocess,
as the reference next to tfllm's Beam job. An optional benchmark dependency
(`pip install -e '.[bench]'`), never a runtime one.

The same documents and thresholds: Gopher quality (3+ words, no stop-word minimum,
half the words alphabetic) and repetition (no top-n-gram rule), C4's lorem ipsum,
e-mail and IP scrubbing, then MinHash near-duplicate removal in its four stages with
tfllm's 5-grams and 25 x 5 layout. What datatrove does not do here flatters it:
no Unicode normalisation, no bad-words list (its C4 list is a download), no phone
numbers, no exact document or line deduplication, no confirmation of candidates.
"""

import os

from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster,
                                      MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters import (C4QualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

from tfllm.data.near_dedup import MinHashConfig
from tfllm.data.sources import decode


def _reader(files):
    def read(data, rank=0, world_size=1):
        for path in files:
            with open(path, "rb") as f:
                chunks = f.read().split(b"\n%\n")
            for index, chunk in enumerate(chunks):
                if chunk.strip():
                    yield Document(text=decode(chunk)[0], id=f"{path}:{index}")
    return read


def _run(pipeline, scratch, name, tasks=1):
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                          logging_dir=os.path.join(scratch, "logs", name)).run()


def clean(files, scratch):
    """Runs the five datatrove stages over `files`; returns documents kept."""
    bands, rows = MinHashConfig().layout
    minhash = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows)

    def folder(name):
        return os.path.join(scratch, name)

    _run([_reader(files),
          GopherQualityFilter(min_doc_words=3, min_stop_words=0, max_non_alpha_words_ratio=0.5),
          GopherRepetitionFilter(top_n_grams=()),
          C4QualityFilter(split_paragraph=True, remove_citations=False,
                          filter_no_terminal_punct=False, min_num_sentences=-1,
                          min_words_per_line=-1, max_word_length=-1, filter_lorem_ipsum=True,
                          filter_javascript=False, filter_curly_bracket=False,
                          filter_policy=False),
          PIIFormatter(),
          JsonlWriter(folder("filtered"))], scratch, "filter")
    _run([JsonlReader(folder("filtered")),
          MinhashDedupSignature(output_folder=folder("signatures"), config=minhash)],
         scratch, "signatures")
    _run([MinhashDedupBuckets(input_folder=folder("signatures"),
                              output_folder=folder("buckets"), config=minhash)],
         scratch, "buckets", tasks=bands)
    _run([MinhashDedupCluster(input_folder=folder("buckets"), output_folder=folder("remove"),
                              config=minhash)], scratch, "cluster")
    _run([JsonlReader(folder("filtered")),
          MinhashDedupFilter(input_folder=folder("remove")),
          JsonlWriter(folder("output"))], scratch, "dedup")
    return sum(1 for name in os.listdir(folder("output"))
               for _ in JsonlReader(folder("output")).read_file(name))
