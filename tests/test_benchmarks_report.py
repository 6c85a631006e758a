"""The benchmark report, rebuilt from the results measured and committed in
benchmarks/report.json: every benchmark's same-run ratios in the table, one plot each,
failures listed, the JSON round-tripped."""

import json
import os

from benchmarks import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_report_rebuilt_from_measured_results(tmp_path):
    with open(os.path.join(REPO, "benchmarks", "report.json")) as f:
        measured = json.load(f)
    results = measured["results"]
    assert set(results) == {"train", "input_pipeline", "preprocess", "serve", "generate"}
    path = report.write(str(tmp_path / "report.md"), results, {"extra": "exit status 1"},
                        measured["environment"])
    table = open(path).read()
    train, serve = results["train"], results["serve"]
    tiny = train["cells"]["gpt_tiny"]
    assert (f"| train | gpt_tiny tokens/s: tfllm (loops of {train['config']['steps_per_loop']}) "
            f"/ keras-hub fit, target 1.3x | "
            f"{tiny['tokens_per_second']['tfllm_steps_per_loop']:,} / "
            f"{tiny['tokens_per_second']['keras_hub_fit']:,} | "
            f"{tiny['tfllm_over_keras_hub_fit']:.2f}x |") in table
    assert f"{tiny['k4_over_k1']:.2f}x |" in table
    if "remeasured" in measured["environment"]:
        assert "Measured again alone since: train on " in table
    assert f"{results['preprocess']['beam_2_workers_over_1']:.2f}x |" in table
    assert f"{results['generate']['cache_over_no_cache']:.1f}x |" in table
    assert f"{serve['batching_speedup_at_most_clients']['grpc']:.2f}x |" in table
    assert "| extra | failed | exit status 1 | |" in table
    for name in results:
        assert f"![{name}](report/{name}.png)" in table
        with open(tmp_path / "report" / f"{name}.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "report.json") as f:
        assert json.load(f)["results"] == results
