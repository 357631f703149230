"""Show a saved bench report again: the summary, a Markdown table, the profiles, the PNG.

    python bench/show.py bench/results/<stamp>-<label>.json [--markdown] [--profile] [--png]
"""

from __future__ import annotations

import json
from pathlib import Path

from plot import plot
from report import fmt, summary, targets


def print_profile(doc: dict, top: int = 25) -> None:
    """The sampled server stacks of each run, by phase: where the server's threads were."""
    for run in doc["runs"]:
        for process, phases in enumerate(run.get("figures", {}).get("profile", [])):
            for phase, data in phases.items():
                total = data["samples"] or 1
                print(f"\n== {run['label']} process {process}, {phase}: {data['samples']} samples "
                      "(thread stacks not parked in a wait)")
                print("  self:")
                for name, n in data["self"][:top]:
                    print(f"  {100 * n / total:5.1f}%  {name}")
                print("  inclusive:")
                for name, n in data["inclusive"][:top * 2]:
                    print(f"  {100 * n / total:5.1f}%  {name}")


def markdown(doc: dict) -> str:
    """The runs as a Markdown table (for docs/performance.md and the README)."""
    head = ("| run | streams x events/s | p50 / p95 / p99 / max ms | lost | dup | ooo | server CPU % | us/delivery "
            "(fan-out only) | deliveries/s | RSS MB per 1000 streams | POST p99 ms | SQL per event | reconnect "
            "p50 / p99 / max s | client CPU % | other load % |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for run in doc["runs"]:
        if "figures" not in run:
            why = (run.get("skipped") or run.get("failed") or "").splitlines()[0][:100]
            lines.append(f"| {run['label']} | {why} |" + " |" * 13)
            continue
        f, c = run["figures"], run["config"]
        lat = f["latency_ms"]
        rec = f.get("reconnect", {}).get("caught_up_s")
        lines.append(
            f"| {run['label']} | {c['streams']} x {c['rate']:g} ({c['workers']} proc) | {fmt(lat['p50'], 0)} / "
            f"{fmt(lat['p95'], 0)} / {fmt(lat['p99'], 0)} / {fmt(lat['max'], 0)} | {f['lost']} | {f['duplicated']} | "
            f"{f['out_of_order']} | {fmt(f['server_cpu_pct'], 0)} | {fmt(f['us_per_delivery'])} "
            f"({fmt(f['us_per_delivery_fanout'])}) | {fmt(f['deliveries_per_s'], 0)} | "
            f"{fmt(f['rss_growth_mb_per_1000'])} | {fmt(f['post_latency_ms']['p99'], 0)} | "
            f"{fmt(f['queries_per_event'])} | "
            f"{(fmt(rec['p50'], 2) + ' / ' + fmt(rec['p99'], 2) + ' / ' + fmt(rec['max'], 2)) if rec else '-'} | "
            f"{fmt(f['client_cpu_pct'], 0)} | {fmt(f['other_load_pct'], 0)} |")
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Show a saved bench report again.")
    parser.add_argument("report", help="a bench/results/*.json file")
    parser.add_argument("--profile", action="store_true", help="also the sampled profiles (bench/run.py --profile)")
    parser.add_argument("--png", action="store_true", help="draw the PNG again next to the JSON")
    parser.add_argument("--markdown", action="store_true", help="also the runs as a Markdown table")
    args = parser.parse_args()
    path = Path(args.report)
    doc = json.loads(path.read_text())
    doc["targets"] = targets(doc["runs"])
    print(summary(doc, path.with_suffix("")))
    if args.png:
        plot(doc, path.with_suffix(".png"))
    if args.markdown:
        print()
        print(markdown(doc))
    if args.profile:
        print_profile(doc)


if __name__ == "__main__":
    main()
