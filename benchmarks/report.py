"""The benchmark report: a Markdown table of same-run ratios, a JSON file, bar plots."""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file backend)


def _rows(name, r):
    """(measure, value, same-run ratio) rows of one benchmark's results."""
    if name == "train":
        rows = []
        for cell, c in r["cells"].items():
            rates = c["tokens_per_second"]
            target = f", target {c['target_over_fit']}x" if c["target_over_fit"] else ""
            rows.append((f"{cell} tokens/s: tfllm (loops of {r['config']['steps_per_loop']}) / "
                         f"keras-hub fit{target}",
                         f"{rates['tfllm_steps_per_loop']:,} / {rates['keras_hub_fit']:,}",
                         f"{c['tfllm_over_keras_hub_fit']:.2f}x"))
            rows.append((f"{cell} MFU: tfllm / keras-hub fit (peak {r['peak_gflops']:,} "
                         "GFLOP/s)", f"{c['mfu']['tfllm_steps_per_loop']:.0%} / "
                         f"{c['mfu']['keras_hub_fit']:.0%}", ""))
            rows.append((f"{cell} tfllm tokens/s, k=4 / k=1 micro-batches",
                         f"{rates['tfllm_steps_per_loop_k4']:,} / "
                         f"{rates['tfllm_steps_per_loop']:,}", f"{c['k4_over_k1']:.2f}x"))
        return rows
    if name == "input_pipeline":
        return [("examples/s: tf.data reader / training consumes",
                 f"{r['reader_examples_per_second']:,} / {r['train_examples_per_second']:,}",
                 f"{r['reader_over_train']:.1f}x")]
    if name == "preprocess":
        return [("documents/s: Beam 1 worker / single-process loop",
                 f"{r['beam_1_worker_documents_per_second']:,} / "
                 f"{r['loop_documents_per_second']:,}", f"{r['beam_1_worker_over_loop']:.2f}x"),
                ("documents/s: Beam 2 workers / 1 worker",
                 f"{r['beam_2_workers_documents_per_second']:,} / "
                 f"{r['beam_1_worker_documents_per_second']:,}",
                 f"{r['beam_2_workers_over_1']:.2f}x")] + ([
                ("documents/s: Beam 1 worker / datatrove 1 task, same rules",
                 f"{r['beam_1_worker_documents_per_second']:,} / "
                 f"{r['datatrove_1_task_documents_per_second']:,}",
                 f"{r['beam_1_worker_over_datatrove']:.2f}x"),
                ("MB/s per core: Beam 1 worker / datatrove 1 task",
                 f"{r['beam_1_worker_megabytes_per_second_per_core']} / "
                 f"{r['datatrove_1_task_megabytes_per_second_per_core']}", "")]
                if "beam_1_worker_over_datatrove" in r else [])
    if name == "vocabulary":
        return [(f"{family} tokenizer seconds: in memory ({r[family]['in_memory_documents']:,}"
                 f" docs) / Beam counts of {r['documents']:,} docs (2 workers) + learning",
                 f"{r[family]['in_memory_seconds']} / "
                 f"{r[family]['beam_2_workers_count_seconds']} + "
                 f"{r[family]['learn_from_counts_seconds']}",
                 f"{r[family]['from_counts_2_workers_over_in_memory_speed']:.2f}x speed, "
                 f"{r[family]['shared_vocabulary']:.1%} shared")
                for family in ("bert", "gpt") if family in r]
    if name == "near_duplicates":
        chosen, fixed = r["layouts"]
        names = f"{chosen['bands']}x{chosen['rows']} / {fixed['bands']}x{fixed['rows']}"
        rows = [(f"near-duplicate recall at Jaccard {band}: {names}",
                 f"{chosen['recall'][band]:.2f} / {fixed['recall'][band]:.2f}", "")
                for band in chosen["recall"]]
        rows.append((f"distinct documents removed of {r['documents'] - r['planted']:,}: {names}",
                     f"{chosen['false_removals']} / {fixed['false_removals']}", ""))
        return rows
    if name == "serve":
        most = max(c["clients"] for c in r["cells"])
        rows = []
        for transport in ("rest", "grpc"):
            cell = {c["batching"]: c for c in r["cells"]
                    if c["transport"] == transport and c["clients"] == most}
            rows.append((f"{transport} req/s at {most} clients: batching on / off",
                         f"{cell[True]['requests_per_second']:,.0f} / "
                         f"{cell[False]['requests_per_second']:,.0f} (p99 "
                         f"{cell[True]['p99_ms']:.0f} / {cell[False]['p99_ms']:.0f} ms)",
                         f"{r['batching_speedup_at_most_clients'][transport]:.2f}x"))
        tokens = r["text_tokens"]
        for transport in ("rest", "grpc"):
            latency, stream = r["latency"][transport], r["streaming"][transport]
            rows.append((f"{transport} p50 ms: {tokens['short']} / {tokens['long']}-token text",
                         f"{latency['short']:.1f} / {latency['long']:.1f}",
                         f"{latency['short_over_long']:.2f}x"))
            rows.append((f"{transport} stream: first token / whole {stream['tokens']}-token "
                         "answer (not streamed), ms",
                         f"{stream['time_to_first_token_ms']:.0f} / {stream['generate_ms']:.0f} "
                         f"({stream['tokens_per_second']:.0f} tokens/s streamed)",
                         f"{stream['first_token_over_answer']:.3f}x"))
        return rows
    if name == "generate":
        return [(f"{r['preset']} tokens/s: KV cache / no cache (graph)",
                 f"{r['cache_graph_tokens_per_second']:,} / "
                 f"{r['no_cache_graph_tokens_per_second']:,}", f"{r['cache_over_no_cache']:.1f}x"),
                ("KV cache under XLA tokens/s", f"{r['cache_xla_tokens_per_second']:,}", "")] + [
                (f"{name} prompt ({p['prompt_tokens']}+{p['new_tokens']}) tokens/s: prefilled "
                 "at its length / over the whole cache",
                 f"{p['prompt_length_prefill_tokens_per_second']:,} / "
                 f"{p['whole_cache_prefill_tokens_per_second']:,}",
                 f"{p['prompt_length_over_whole_cache']:.2f}x")
                for name, p in r["prompt_lengths"].items()]
    if name == "decoders":
        rows = [(f"{preset}: parameters / training tokens/s (MFU) / cached generation tokens/s "
                 "/ cache MiB",
                 f"{p['parameters']:,} / {p['train_tokens_per_second']:,.0f} ({p['mfu']:.0%}) / "
                 f"{p['generate_tokens_per_second']:,.0f} / {p['cache_bytes'] / 2**20:.1f}", "")
                for preset, p in r["presets"].items()]
        if "second_over_first" in r:
            ratio = r["second_over_first"]
            rows.append((" / ".join(reversed(list(r["presets"]))) + ": parameters, training, "
                         "generation, cache bytes", "", ", ".join(
                             f"{ratio[k]}x" for k in ("parameters", "train_tokens_per_second",
                                                      "generate_tokens_per_second",
                                                      "cache_bytes"))))
        return rows
    if name == "quantize":
        base = r["models"]["float32"]
        rows = [(f"{r['preset']} float32: SavedModel MB / perplexity / decode tokens/s",
                 f"{base['saved_model_bytes'] / 1e6:.1f} / {base['perplexity']:.2f} / "
                 + ", ".join(f"batch {b}: {t:.0f}" for b, t in
                             base["tokens_per_second"].items()), "")]
        for mode, m in r["models"].items():
            if mode != "float32":
                rows.append((f"{mode}: bytes (variables) / perplexity / resident memory / "
                             "decode tokens/s, x float32",
                             f"{m['bytes_over_float32']} ({m['variables_bytes_over_float32']}) /"
                             f" {m['perplexity_over_float32']} / {m['rss_over_float32']} / "
                             + ", ".join(f"{v}" for v in
                                         m["tokens_per_second_over_float32"].values()),
                             ", ".join(k for k, met in m["met"].items() if met) or "none met"))
        return rows
    return [(key, str(value), "") for key, value in r.items()]


def _bars(path, title, labels, values, ylabel):
    figure, axis = plt.subplots(figsize=(6, 3.2))
    axis.bar(labels, values, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][:len(values)])
    for index, value in enumerate(values):
        axis.text(index, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=8)
    axis.set_title(title, fontsize=10)
    axis.set_ylabel(ylabel)
    axis.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _train_plot(path, r):
    """Tokens/s per cell, each side as a share of tfllm's looped trainer."""
    sides = [("tfllm_steps_per_loop", "tfllm, loops"), ("tfllm_1_step_per_call", "tfllm, 1 step"),
             ("keras_hub_fit", "keras-hub fit"),
             ("keras_hub_fit_steps_per_execution", "fit, steps_per_execution"),
             ("tfllm_model_compiled_step", "compiled step, tfllm model")]
    cells = list(r["cells"])
    figure, axis = plt.subplots(figsize=(8, 3.4))
    width = 0.8 / len(sides)
    for index, (key, label) in enumerate(sides):
        values = [r["cells"][c]["tokens_per_second"][key] /
                  r["cells"][c]["tokens_per_second"]["tfllm_steps_per_loop"] for c in cells]
        axis.bar([i + index * width for i in range(len(cells))], values, width, label=label)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(cells))], cells, fontsize=8)
    axis.set_ylabel("tokens/s / tfllm's")
    axis.set_title("training throughput, same shape, batch and reader", fontsize=10)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _serve_plot(path, r):
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for transport in ("rest", "grpc"):
        for batching in (False, True):
            cells = sorted((c for c in r["cells"] if c["transport"] == transport
                            and c["batching"] == batching), key=lambda c: c["clients"])
            label = f"{transport}, batching {'on' if batching else 'off'}"
            clients = [c["clients"] for c in cells]
            axes[0].plot(clients, [c["requests_per_second"] for c in cells], "o-", label=label)
            axes[1].plot(clients, [c["p99_ms"] for c in cells], "o-", label=label)
    for axis, ylabel in zip(axes, ("requests/s", "p99 latency (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(ylabel)
    axes[0].legend(fontsize=7)
    figure.suptitle(f"serving {r['preset']} classifier", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _near_duplicates_plot(path, r):
    """Each layout's S-curve, with the recall measured in each Jaccard band on it."""
    figure, axis = plt.subplots(figsize=(6, 3.5))
    similarity = [i / 100 for i in range(30, 101)]
    for layout in r["layouts"]:
        bands, rows = layout["bands"], layout["rows"]
        line, = axis.plot(similarity, [1 - (1 - s ** rows) ** bands for s in similarity],
                          label=f"{bands} bands x {rows} rows: P(candidate)")
        centres = [sum(map(float, band.split("-"))) / 2 for band in layout["recall"]]
        axis.plot(centres, list(layout["recall"].values()), "o", color=line.get_color(),
                  label=f"{bands} x {rows}: measured recall")
    axis.set_xlabel("5-gram Jaccard of the pair")
    axis.set_ylabel("probability / recall")
    axis.legend(fontsize=7)
    figure.suptitle(f"near duplicates: {r['planted']} planted in {r['documents']:,} documents",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot(name, r, path):
    if name == "train":
        _train_plot(path, r)
    elif name == "input_pipeline":
        _bars(path, "input pipeline vs training", ["tf.data reader", "training"],
              [r["reader_examples_per_second"], r["train_examples_per_second"]], "examples/s")
    elif name == "preprocess":
        _bars(path, f"cleaning {r['documents']:,} documents",
              ["Python loop", "Beam, 1 worker", "Beam, 2 workers", "datatrove, 1 task"][
                  :3 + ("datatrove_1_task_documents_per_second" in r)],
              [r[f"{name}_documents_per_second"] for name in (
                  "loop", "beam_1_worker", "beam_2_workers", "datatrove_1_task")
               if f"{name}_documents_per_second" in r], "documents/s")
    elif name == "near_duplicates":
        _near_duplicates_plot(path, r)
    elif name == "serve":
        _serve_plot(path, r)
    elif name == "generate":
        _bars(path, f"{r['preset']} generation, batch {r['batch']}",
              ["no cache", "KV cache", "KV cache + XLA"],
              [r["no_cache_graph_tokens_per_second"], r["cache_graph_tokens_per_second"],
               r["cache_xla_tokens_per_second"]], "tokens/s")
    else:
        return None
    return path


def write(path, results, failures, environment):
    """Writes the report at `path` (.md), its .json and PNGs in `report/` beside it."""
    directory = os.path.dirname(os.path.abspath(path))
    plots = os.path.join(directory, "report")
    os.makedirs(plots, exist_ok=True)
    lines = ["# tfllm benchmarks", "",
             f"{environment['date']}, {environment['machine']}, Python "
             f"{environment['python']}, `--size={environment['size']}`. Each ratio compares "
             "numbers measured in the same run; absolute numbers move with the machine's "
             "load. Reproduce with `python -m benchmarks`.", "",
             "| benchmark | measure | value | ratio |", "| --- | --- | --- | --- |"]
    pictures = []
    for name, result in results.items():
        for measure, value, ratio in _rows(name, result):
            lines.append(f"| {name} | {measure} | {value} | {ratio} |")
        picture = _plot(name, result, os.path.join(plots, f"{name}.png"))
        if picture:
            pictures.append(f"![{name}](report/{name}.png)")
    for name, error in failures.items():
        lines.append(f"| {name} | failed | {error} | |")
    if environment.get("remeasured"):  # benchmarks run again alone since `date`
        lines += ["", "Measured again alone since: " + ", ".join(
            f"{name} on {date}" for name, date in environment["remeasured"].items()) + "."]
    lines += ["", *pictures, "", "Seconds per benchmark: " + ", ".join(
        f"{name} {seconds}" for name, seconds in environment["seconds"].items()), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump({"environment": environment, "results": results, "failures": failures}, f,
                  indent=2)
    return path
