"""The bench's PNG: latency CDF, deliveries per second and server CPU over time, one line per run."""

from __future__ import annotations

from pathlib import Path

from report import TARGET_P99_MS


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in doc["runs"] if "series" in r]
    if not runs:
        return
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 12))
    for run in runs:
        s = run["series"]
        if s["cdf"]:
            ax1.plot(s["cdf"]["ms"], [q * 100 for q in s["cdf"]["q"]], label=run["label"])
        ax2.plot(s["timeline"]["t"], s["timeline"]["per_s"], label=run["label"], linewidth=1)
        ax3.plot(s["server_cpu"]["t"], s["server_cpu"]["pct"], label=run["label"], linewidth=1)
        for name in ("kill", "accept"):
            if name in s["marks"]:
                ax2.axvline(s["marks"][name], linestyle=":", color="grey")
    ax1.set_xscale("log")
    ax1.set_xlabel("latency, POST sent to frame read (ms, log)")
    ax1.set_ylabel("% of deliveries")
    ax1.axvline(TARGET_P99_MS, color="red", linestyle="--", linewidth=0.8)
    ax1.set_yticks([0, 25, 50, 75, 90, 99])
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title("Latency CDF (red: 100 ms target)")
    ax2.set_xlabel("seconds since the first POST")
    ax2.set_ylabel("deliveries / s")
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    ax2.set_title("Deliveries per second (dotted: SIGKILL, accepting again)")
    ax3.set_xlabel("seconds since the first POST")
    ax3.set_ylabel("server CPU % (100 = one core)")
    ax3.grid(True, alpha=0.3)
    ax3.legend(fontsize=8)
    ax3.set_title("Server CPU")
    fig.suptitle(f"doc-review bench {doc['generated']} ({doc['machine']['cores']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
