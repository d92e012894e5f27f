"""The example manifests a user applies are accepted by the API server with the real CRDs."""

from __future__ import annotations

import pytest
import yaml

from fraud_testbed.paths import REPO_ROOT

# The ECK CRDs are not among the upstream CRDs of the test bed, so elasticsearch.yaml is not here.
EXAMPLES = ["kafka.yaml", "fraudpipeline.yaml", "fraudpipeline-minimal.yaml"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_passes_server_side_dry_run(kube, namespace, example):
    kube.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    documents = [
        doc for doc in yaml.safe_load_all((REPO_ROOT / "examples" / example).read_text()) if doc
    ]
    for document in documents:
        document["metadata"]["namespace"] = namespace
    assert kube.dry_run(documents) == len(documents)
