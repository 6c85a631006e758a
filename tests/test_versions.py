import os

import pytest

from tfllm.errors import ConfigError
from tfllm.serving import versions


def test_versions_increase_and_appear_only_when_complete(tmp_path):
    base = str(tmp_path)
    temporary, version = versions.begin_version(base, "bert_classifier")
    assert version == 1 and os.path.basename(temporary).startswith(".tmp-1-")
    open(os.path.join(temporary, "saved_model.pb"), "w").close()
    assert versions.versions(os.path.join(base, "bert_classifier")) == []  # not visible yet
    final = versions.commit_version(temporary, version)
    assert final.endswith("bert_classifier/1")
    _, version = versions.begin_version(base, "bert_classifier")
    assert version == 2
    # An interrupted export's directory is cleaned up and never counted as a version.
    assert versions.versions(os.path.join(base, "bert_classifier")) == [1]


@pytest.mark.parametrize("name", ["../etc", "a/b", "..", ".hidden", "", "x" * 65])
def test_unsafe_model_names_are_rejected(name):
    with pytest.raises(ConfigError, match="is not allowed"):
        versions.check_model_name(name)
