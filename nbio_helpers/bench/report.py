"""What the benchmark's numbers say: the issue's targets, the printed table, the JSON.

The results are plain data (see :func:`.runner.run_bench`), so all of this works on numbers
from any run, or on numbers made up for a test::

    results["targets"] = evaluate_targets(results)
    print(format_report(results))
    json.dump(json_ready(results), f, allow_nan=False)
"""

from __future__ import annotations

from nbio_helpers.bench.load import BULK_BUFFER
from nbio_helpers.bench.servers import REFERENCE

IDLE_CPU_TARGET = 0.01
"""Idle CPU share (of one core) that the servers of IDLE_TARGET_SERVERS must stay under."""
IDLE_TARGET_SERVERS = ("select", "selectors", "asyncio")

COLUMNS = (
    f"{'server':<17}{'64 B msg/s':>11}{'x ref':>7}{'us/msg':>7}{'p50 ms':>7}"
    f"{'p99 ms':>7}{'64 KiB MB/s':>12}{'x ref':>7}{'us/msg':>7}{'of ceiling':>11}"
    f"{'served':>8}{'idle CPU':>9}"
)

LEGEND = [
    "x ref: throughput relative to ref-asyncio (asyncio streams written plainly);",
    "us/msg: the server's CPU time per echoed message, lowest of the rounds (steadier "
    "than throughput on a busy machine);",
    "of ceiling: echoed payload bytes/s (one way) over the loopback ceiling (one way);",
    "served: clients that got at least one echo (64 B run);",
    "p99 ms: of the 64 B echoes; '-' with fewer than 1,000 echoes, too few to name a p99 "
    "(see nbio_helpers.measure.stats);",
]


def evaluate_targets(results: dict) -> list[dict]:
    """The issue's targets, each with the measured value and whether it was met."""
    targets = []
    servers = results["servers"]
    ref = servers.get(REFERENCE)
    sel = servers.get("selectors")
    if ref and sel:
        for label in ("small", "large"):
            ratio = ratio_of(sel[label]["messages_per_second"], ref[label]["messages_per_second"])
            targets.append(
                {
                    "target": f"selectors >= 1.0x {REFERENCE} throughput, "
                    f"{size_text(sel[label]['size'])}",
                    "value": ratio,
                    "shown": f"{ratio:.2f}x" if ratio else "n/a",
                    "met": bool(ratio and ratio >= 1.0 and not sel[label]["errors"]),
                }
            )
    for name in IDLE_TARGET_SERVERS:
        if name in servers:
            share = servers[name]["idle"]["cpu_share"]
            targets.append(
                {
                    "target": f"{name} idle CPU <= {IDLE_CPU_TARGET:.0%} of a core",
                    "value": share,
                    "shown": f"{share:.2%}",
                    "met": share == share and share <= IDLE_CPU_TARGET,
                }
            )
    conns = results["connections"].get("selectors")
    if conns:
        asked = conns["asked"]
        ok = conns.get("echoed_ok", 0)
        targets.append(
            {
                "target": f"selectors holds {asked:,} connections, every echo correct",
                "value": ok,
                "shown": f"{ok:,} of {asked:,}",
                "met": ok == asked and not conns["errors"],
            }
        )
    return targets


def format_report(results: dict) -> str:
    """The benchmark table, as printed by ``python -m nbio_helpers bench``."""
    settings = results["settings"]
    lines = _heading(results) + ["", COLUMNS, "-" * len(COLUMNS)]
    ref = results["servers"].get(REFERENCE)
    ceiling = results["ceiling"]["bytes_per_second"]
    for name, entry in results["servers"].items():
        lines.append(_server_row(name, entry, ref, ceiling))
    lines += [
        "",
        *LEGEND,
        f"idle CPU: share of one core with {settings['clients']} connected silent clients.",
        "",
    ]
    lines += _connection_lines(results["connections"])
    lines += ["", "targets:"]
    for t in results["targets"]:
        lines.append(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['shown']}")
    return "\n".join(lines)


def _heading(results: dict) -> list[str]:
    meta, st = results["meta"], results["settings"]
    load = meta.get("load_average")
    return [
        f"nbio bench{' (quick run)' if st['quick'] else ''}: upper-case echo servers, side by side",
        f"machine: {meta['platform']}, {meta['cpus']} CPUs, Python {meta['python']}, "
        f"{meta['selector']}" + (f", load average {load[0]:.2f} at the start" if load else ""),
        f"load: {st['clients']} concurrent clients in a separate process; each run "
        f"{st['warmup']:g} s warm-up + {st['seconds']:g} s measured, best of {st['rounds']}",
        f"loopback ceiling (1 connection, bulk transfer, {BULK_BUFFER // 2**20} MiB buffers): "
        f"{results['ceiling']['bytes_per_second'] / 1e6:,.0f} MB/s",
    ]


def _server_row(name: str, entry: dict, ref: dict | None, ceiling: float) -> str:
    small, large = entry["small"], entry["large"]
    ref_small, ref_large = (ref["small"], ref["large"]) if ref else ({}, {})
    ratio_small = ratio_of(small["messages_per_second"], ref_small.get("messages_per_second"))
    ratio_large = ratio_of(large["bytes_per_second"], ref_large.get("bytes_per_second"))
    flags = "  (errors, see JSON)" if small["errors"] or large["errors"] else ""
    return (
        f"{name:<17}{fmt(small['messages_per_second'], ',.0f'):>11}"
        f"{_times(ratio_small):>7}"
        f"{fmt(small.get('cpu_us_per_message'), '.1f'):>7}"
        f"{fmt(_ms(small['median_latency_s']), '.2f'):>7}"
        f"{fmt(_ms(_p99(small)), '.1f'):>7}"
        f"{fmt(large['bytes_per_second'] / 1e6, ',.1f'):>12}"
        f"{_times(ratio_large):>7}"
        f"{fmt(large.get('cpu_us_per_message'), '.1f'):>7}"
        f"{fmt(ratio_of(large['bytes_per_second'], ceiling), '.1%'):>11}"
        f"{small['clients_served']:>4}/{small['clients']:<3}"
        f"{fmt(entry['idle']['cpu_share'], '.1%'):>9}{flags}"
    )


def _connection_lines(conns: dict) -> list[str]:
    lines = []
    if "selectors" in conns:
        c = conns["selectors"]
        lines.append(
            f"selectors: {c['opened']:,} of {c['asked']:,} connections opened and held, "
            f"{c.get('echoed_ok', 0):,} echoes correct (all at once); "
            f"RLIMIT_NOFILE soft {c['fd_limit_before']} -> {c['fd_limit']}"
        )
    if "select" in conns:
        c = conns["select"]
        if "skipped" in c:
            lines.append(f"select: FD_SETSIZE probe skipped: {c['skipped']}")
        else:
            lines.append(
                f"select: {c['opened']:,} connections opened; "
                f"{c.get('echoed_ok', 0):,} served, {c.get('refused', 0):,} refused "
                f"(descriptor >= FD_SETSIZE = {c['fd_setsize']})"
            )
    return lines


def json_ready(value):
    """``value`` with every NaN replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


# ------------------------------------------------------------------------- formatting
def ratio_of(value, reference):
    """``value / reference``; None if either is missing (or the reference is 0)."""
    return value / reference if value is not None and reference else None


def fmt(value, spec: str, missing: str = "-") -> str:
    """``format(value, spec)``, or ``missing`` for None and NaN."""
    return missing if value is None or value != value else format(value, spec)


def size_text(nbytes: int) -> str:
    """``64 B``, ``64 KiB``."""
    return f"{nbytes // 1024} KiB" if nbytes >= 1024 else f"{nbytes} B"


def _times(ratio) -> str:
    return fmt(ratio, ".2f") + "x" if ratio else "-"


def _p99(run: dict):
    """The run's p99 latency (seconds), or None if it had too few echoes to name one."""
    return run.get("tail_latency_s") if run.get("tail_name") == "p99" else None


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


__all__ = [
    "COLUMNS",
    "IDLE_CPU_TARGET",
    "IDLE_TARGET_SERVERS",
    "LEGEND",
    "evaluate_targets",
    "fmt",
    "format_report",
    "json_ready",
    "ratio_of",
    "size_text",
]
