"""Soak test (not run in CI): hours of traffic in minutes of attention.

For each bounded overflow mode, run a real consumer and a real producer on free loopback
ports for ``--minutes`` at ``--rate`` msg/s (the consumer a little slower than that, so the
policy is busy the whole time), and check, with psutil and the live telemetry:

* memory: after ``--warmup`` seconds the RSS of each process stays within
  ``--tolerance-mb`` of its value at the end of the warm-up (no leak, no creeping queue);
* accounting: every telemetry snapshot seen says ``identity_ok`` and the final ``--json``
  summaries have no identity errors; in block mode nothing is lost, dropped or reordered;
* throughput: the producer achieved the rate it was asked for (or, in block mode, the
  consumer's rate).

Usage (the numbers in docs/reliability.md come from exactly this)::

    python scripts/soak.py --minutes 10 --rate 10000 --out soak-results.jsonl

It prints a Markdown table at the end and exits 1 if any check failed. Every run stops by
itself; Ctrl-C stops the current mode cleanly and still prints what was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import psutil
import zmq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.processes import net  # noqa: E402

BOUNDED_MODES = ("block", "drop", "drop-oldest", "sample", "shed")


class Child:
    """A lab process whose stdout (the --json summary) goes to a temporary file."""

    def __init__(self, argv: List[str]) -> None:
        self.argv = argv
        self.out = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in finish())
        self.err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err, cwd=str(REPO)
        )
        self.ps = psutil.Process(self.popen.pid)

    def rss_mb(self) -> Optional[float]:
        try:
            return self.ps.memory_info().rss / (1024 * 1024)
        except psutil.Error:
            return None

    def cpu_seconds(self) -> float:
        try:
            times = self.ps.cpu_times()
            return times.user + times.system
        except psutil.Error:
            return 0.0

    def finish(self, timeout: float = 20.0) -> Dict[str, Any]:
        """SIGINT, wait, and return the JSON summary (killed if it does not stop)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self.out.seek(0)
        self.err.seek(0)
        out, err = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        for line in reversed(out.strip().splitlines()):
            if line.startswith("{"):
                summary = json.loads(line)
                summary["exit_code"] = self.popen.returncode
                return summary
        return {"exit_code": self.popen.returncode, "stderr": err[-2000:]}


def soak_mode(mode: str, args: argparse.Namespace) -> Dict[str, Any]:
    port = net.free_port_block()
    lab = [sys.executable, "-m", "lab"]
    consumer = Child(
        lab
        + [
            "consumer",
            "--port",
            str(port),
            "--mode",
            mode,
            "--buffer",
            str(args.buffer),
            "--process-rate",
            str(args.process_rate),
            "--json",
            "--quiet",
        ]
    )
    producer_argv = lab + ["producer", "--port", str(port), "--mps", str(args.rate)]
    producer_argv += ["--json", "--quiet", "--name", f"soak-{mode}"]
    if mode == "shed":
        producer_argv += ["--retry", "backoff", "--max-attempts", "3"]
    producer = Child(producer_argv)

    ctx = zmq.Context()
    sub = net.telemetry_subscriber(ctx)
    sub.connect(net.endpoint("127.0.0.1", port + net.TELEMETRY_OUT_OFFSET))
    snapshots = {"consumer": 0, "producer": 0}
    bad_snapshots: List[str] = []
    samples: Dict[str, List[float]] = {"consumer": [], "producer": []}
    series: List[List[float]] = []  # every 10 s: [seconds, consumer MB, producer MB, load]
    baseline: Dict[str, Optional[float]] = {"consumer": None, "producer": None}
    started = time.monotonic()
    end = started + args.minutes * 60.0
    next_sample = started
    interrupted = False
    try:
        while time.monotonic() < end:
            if consumer.popen.poll() is not None or producer.popen.poll() is not None:
                break
            if sub.poll(200):
                for snap in net.waiting_snapshots(sub, limit=1000):
                    if snap is None:
                        continue
                    snapshots[snap["role"]] += 1
                    if not snap.get("identity_ok", True) and len(bad_snapshots) < 20:
                        bad_snapshots.append(f"{snap['role']} at {snap.get('uptime_s')} s")
            now = time.monotonic()
            if now >= next_sample:
                next_sample += 1.0
                warm = now - started >= args.warmup
                readings = {}
                for role, child in (("consumer", consumer), ("producer", producer)):
                    rss = child.rss_mb()
                    readings[role] = rss
                    if rss is None or not warm:
                        continue
                    if baseline[role] is None:
                        baseline[role] = rss
                    samples[role].append(rss)
                if int(now - started) % 10 == 0 and None not in readings.values():
                    series.append(
                        [
                            round(now - started),
                            round(readings["consumer"], 1),
                            round(readings["producer"], 1),
                            round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else 0.0,
                        ]
                    )
    except KeyboardInterrupt:
        interrupted = True
    elapsed = time.monotonic() - started
    cpu = {"consumer": consumer.cpu_seconds(), "producer": producer.cpu_seconds()}
    p_summary = producer.finish()
    c_summary = consumer.finish()
    sub.close(linger=0)
    ctx.term()

    result: Dict[str, Any] = {
        "mode": mode,
        "minutes": round(elapsed / 60.0, 2),
        "rate": args.rate,
        "process_rate": args.process_rate,
        "buffer": args.buffer,
        "snapshots": snapshots,
        "bad_snapshots": bad_snapshots,
        "interrupted": interrupted,
        "series": series,
        "consumer": _pick(c_summary, _CONSUMER_KEYS),
        "producer": _pick(p_summary, _PRODUCER_KEYS),
    }
    for role in ("consumer", "producer"):
        values, base = samples[role], baseline[role]
        result[f"{role}_cpu_pct"] = round(100.0 * cpu[role] / max(elapsed, 1e-9), 1)
        if values and base is not None:
            result[f"{role}_rss"] = {
                "baseline_mb": round(base, 1),
                "min_mb": round(min(values), 1),
                "max_mb": round(max(values), 1),
                "final_mb": round(values[-1], 1),
                "median_mb": round(statistics.median(values), 1),
                "max_drift_mb": round(max(abs(v - base) for v in values), 1),
                "slope_mb_per_min": round(_slope(values) * 60.0, 3),
            }
    result["failures"] = _failures(result, args)
    return result


_CONSUMER_KEYS = (
    "received",
    "accepted",
    "processed",
    "dropped",
    "sampled_out",
    "shed",
    "depth",
    "max_depth",
    "malformed",
    "out_of_order",
    "processed_mps",
    "identity_errors",
    "exit_code",
    "stderr",
)
_PRODUCER_KEYS = (
    "produced",
    "unique",
    "retried",
    "achieved_mps",
    "skipped",
    "in_flight",
    "lost",
    "duplicates",
    "identity_errors",
    "exit_code",
    "stderr",
)


def _slope(values: List[float]) -> float:
    """Least-squares slope of one-per-second samples, in MB/s: a leak climbs steadily."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2.0, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def _pick(summary: Dict[str, Any], keys) -> Dict[str, Any]:
    return {k: summary[k] for k in keys if k in summary}


def _failures(result: Dict[str, Any], args: argparse.Namespace) -> List[str]:
    failures = []
    c, p = result["consumer"], result["producer"]
    for role, summary in (("consumer", c), ("producer", p)):
        if summary.get("exit_code") != 0:
            failures.append(f"{role} exited with {summary.get('exit_code')}")
        if summary.get("identity_errors"):
            failures.append(f"{role} identity errors: {summary['identity_errors'][:2]}")
        rss = result.get(f"{role}_rss")
        if rss is None:
            failures.append(f"{role}: no RSS samples after the warm-up")
        elif rss["max_drift_mb"] > args.tolerance_mb:
            failures.append(
                f"{role} RSS drifted {rss['max_drift_mb']} MB (> {args.tolerance_mb} MB)"
            )
    if result["bad_snapshots"]:
        failures.append(f"snapshots with identity_ok false: {result['bad_snapshots'][:3]}")
    if not result["snapshots"]["consumer"] or not result["snapshots"]["producer"]:
        failures.append("no telemetry seen")
    if result["mode"] == "block":
        if c.get("dropped") or p.get("lost") or c.get("out_of_order"):
            failures.append("block mode lost, dropped or reordered messages")
        expected = min(args.rate, args.process_rate)
    else:
        expected = args.rate
    achieved = p.get("achieved_mps", 0.0)
    if achieved < 0.95 * expected:
        failures.append(f"producer achieved {achieved:.0f} msg/s, expected about {expected:g}")
    return failures


def markdown(results: List[Dict[str, Any]]) -> str:
    head = (
        "| mode | minutes | produced | achieved msg/s | processed msg/s | dropped+sampled+shed "
        "| consumer RSS base / min / max MB | producer RSS base / min / max MB "
        "| max drift MB (C / P) | slope MB/min (C / P) | CPU % (C / P) | load avg "
        "| snapshots | identity | lost | result |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for r in results:
        c, p = r["consumer"], r["producer"]
        crss, prss = r.get("consumer_rss", {}), r.get("producer_rss", {})
        refused = c.get("dropped", 0) + c.get("sampled_out", 0) + c.get("shed", 0)
        identity = "ok" if not (c.get("identity_errors") or p.get("identity_errors")) else "ERR"
        if r["bad_snapshots"]:
            identity = "ERR"
        rows.append(
            f"| {r['mode']} | {r['minutes']:.1f} | {p.get('produced', 0):,} "
            f"| {p.get('achieved_mps', 0):,.0f} | {c.get('processed_mps', 0):,.0f} "
            f"| {refused:,} "
            f"| {_rss(crss)} | {_rss(prss)} "
            f"| {crss.get('max_drift_mb', '-')} / {prss.get('max_drift_mb', '-')} "
            f"| {crss.get('slope_mb_per_min', '-')} / {prss.get('slope_mb_per_min', '-')} "
            f"| {r['consumer_cpu_pct']:.0f} / {r['producer_cpu_pct']:.0f} "
            f"| {_mean_load(r)} "
            f"| {sum(r['snapshots'].values()):,} | {identity} | {p.get('lost', '-')} "
            f"| {'pass' if not r['failures'] else 'FAIL: ' + '; '.join(r['failures'])} |"
        )
    return "\n".join(rows)


def _mean_load(result: Dict[str, Any]) -> str:
    loads = [row[3] for row in result.get("series", [])]
    return f"{sum(loads) / len(loads):.1f}" if loads else "-"


def _rss(rss: Dict[str, Any]) -> str:
    if not rss:
        return "-"
    return f"{rss['baseline_mb']:.1f} / {rss['min_mb']:.1f} / {rss['max_mb']:.1f}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="per mode (default 10)")
    parser.add_argument("--rate", type=float, default=10_000.0, help="producer msg/s")
    parser.add_argument(
        "--process-rate", type=float, default=8_000.0, help="consumer msg/s (default 8000)"
    )
    parser.add_argument("--buffer", type=int, default=1000, help="consumer buffer (default 1000)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS counts")
    parser.add_argument("--tolerance-mb", type=float, default=10.0, help="allowed RSS drift")
    parser.add_argument(
        "--modes", default=",".join(BOUNDED_MODES), help="comma-separated (default: all bounded)"
    )
    parser.add_argument("--out", help="append one JSON line per mode to this file")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in BOUNDED_MODES]
    if unknown:
        parser.error(f"unknown or unbounded mode(s) {unknown}; choose from {BOUNDED_MODES}")
    if args.minutes <= 0 or args.rate <= 0 or args.process_rate <= 0 or args.buffer < 1:
        parser.error("--minutes, --rate, --process-rate must be > 0 and --buffer >= 1")
    if args.warmup >= args.minutes * 60:
        parser.error("--warmup must be shorter than the run (--minutes * 60)")
    print(
        f"soak: {len(modes)} mode(s) x {args.minutes:g} min at {args.rate:g} msg/s "
        f"(consumer {args.process_rate:g} msg/s, buffer {args.buffer}); "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
        flush=True,
    )
    results = []
    for mode in modes:
        print(f"soak: {mode} ...", flush=True)
        result = soak_mode(mode, args)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as out:
                out.write(json.dumps(result) + "\n")
        if result["interrupted"]:
            break
    print(markdown(results), flush=True)
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
