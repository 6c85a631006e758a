"""Run a transform over documents in a real Beam TestPipeline; return outputs and counters."""

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tfllm.data.documents import COUNTER_NAMESPACE, Document


def docs(*texts, **fields):
    return [Document(doc_id=f"d{i:03d}", text=t, **fields) for i, t in enumerate(texts)]


def run_transform(transform, documents, expected_texts):
    """Asserts the output texts (as a multiset) and returns the counters."""
    pipeline = TestPipeline()
    output = pipeline | beam.Create(documents) | transform
    assert_that(output | beam.Map(lambda d: d.text), equal_to(expected_texts))
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace(COUNTER_NAMESPACE))
    return {c.key.metric.name: c.committed for c in query["counters"]}
