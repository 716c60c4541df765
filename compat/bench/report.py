"""Markdown tables and the PNG chart of compat/bench/suite.py's rows."""
import os

LOWER_IS_BETTER = {"MiB", "s"}

SIDE_COLUMNS = ["Berth everysec", "Berth always", "Redis everysec", "Redis always"]
SIDE_RATIOS = [("Berth/Redis everysec", "Berth everysec", "Redis everysec"),
               ("Berth/Redis always", "Berth always", "Redis always"),
               ("Berth always / Redis everysec", "Berth always", "Redis everysec")]
MATRIX_COLUMNS = [f"Berth {e} {f}" for e in ("fjall", "sled") for f in ("always", "everysec", "no")] \
    + ["Redis always", "Redis everysec"]
MATRIX_RATIOS = [("fjall always / Redis always", "Berth fjall always", "Redis always"),
                 ("sled always / Redis always", "Berth sled always", "Redis always"),
                 ("fjall everysec / Redis everysec", "Berth fjall everysec", "Redis everysec"),
                 ("sled everysec / Redis everysec", "Berth sled everysec", "Redis everysec"),
                 ("fjall no / Redis everysec", "Berth fjall no", "Redis everysec"),
                 ("sled no / Redis everysec", "Berth sled no", "Redis everysec"),
                 ("fjall always / Redis everysec", "Berth fjall always", "Redis everysec")]
# The chart shows fewer bars per row in the matrix so that it stays readable.
MATRIX_CHART = [0, 1, 2, 3, 6]


def table_rows(mode, rows):
    """[(label, unit, {server: value})] in the order the rows were measured."""
    out, index = [], {}
    for r in rows:
        if r["section"] == "redis-benchmark":
            label = f"{r['metric']} P={r['pipeline']}" if mode == "side" else \
                f"{r['metric']} c={r['clients']} P={r['pipeline']}"
        else:
            label = r["metric"]
        key = (r["section"], label)
        if key not in index:
            index[key] = len(out)
            out.append((label, r["unit"], {}))
        out[index[key]][2][r["server"]] = r["value"]
    if mode == "matrix":  # group by clients and pipeline, then by command
        bench = [t for t in out if " c=" in t[0]]
        rest = [t for t in out if " c=" not in t[0]]
        bench.sort(key=lambda t: (int(t[0].split(" c=")[1].split()[0]), int(t[0].split(" P=")[1])))
        out = bench + rest
    return out


def fmt(value, unit):
    if value is None:
        return ""
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def ratio(vals, num, den):
    a, b = vals.get(num), vals.get(den)
    return a / b if a is not None and b else None


def unit_label(unit):
    return f"{unit}, lower is better" if unit in LOWER_IS_BETTER else unit


def markdown(mode, rows, info, disk_md, quick, name, cmd):
    columns, ratios = (SIDE_COLUMNS, SIDE_RATIOS) if mode == "side" else (MATRIX_COLUMNS, MATRIX_RATIOS)
    trs = table_rows(mode, rows)
    L = []
    if mode == "side":
        L.append("# Berth beside Redis 7.0.15, side by side")
    else:
        L.append("# Berth's persistence matrix beside Redis 7.0.15")
    L.append("")
    if quick:
        L += ["**QUICK RUN (`--quick`): tiny counts that only check the benchmark runs end to end. "
              "These figures are not results.**", ""]
    L += [f"Measured by `{cmd}` on {info['date']}. A benchmark, not a test: nothing here is asserted "
          "about speed (the run fails only if a server does not start or a job is not processed).", ""]
    L += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items() if k != "date"] + [""]
    n_by_shape = {}
    for r in rows:
        if r["section"] == "redis-benchmark":
            n_by_shape.setdefault((r["clients"], r["pipeline"], r["appendfsync"]), r["count"])
    jobs = next((r["count"] for r in rows if r["section"] in ("sidekiq", "bullmq")), None)
    disk_jobs = next((r["count"] for r in rows if r["section"] == "jobs on disk"), None)
    L.append("What runs (every server a fresh process with its own temp data directory and port, "
             "started anew for each part; Redis with `--appendonly yes --appendfsync X --save ''`, "
             "Berth with `--appendfsync X`):")
    if mode == "side":
        L.append("- `redis-benchmark -c 50 -r 100000 -P 1|16 -t set,get,lpush,rpop,zadd,zpopmin`, then "
                 "`EVALSHA <sha> 1 evalkey:__rand_int__` of `" + "return redis.call('INCR', KEYS[1])" + "`; "
                 + ", ".join(f"P={p}: -n {n:,}" for (c, p, f), n in sorted(n_by_shape.items())
                             if f == "always") + ". RPOP pops what LPUSH pushed just before; ZADD adds "
                 "random members (`element:__rand_int__`, fewer distinct ones than requests), so the later "
                 "ZPOPMINs find the set empty, as they do against Redis.")
        if jobs:
            L.append(f"- Sidekiq: {jobs:,} no-op jobs enqueued with `Sidekiq::Client.push_bulk` in batches "
                     "of 1,000, then drained by a real `sidekiq -c 10` process (rate from the first job "
                     "leaving the queue to the queue being empty; boot not counted).")
            L.append(f"- BullMQ: {jobs:,} jobs added with `Queue.addBulk` in chunks of 1,000 "
                     "(`removeOnComplete: true`), then processed by one `Worker` with concurrency 50 "
                     "and a no-op processor (rate from `worker.run()` to the last `completed` event).")
    else:
        L.append("- `redis-benchmark -c 1|50 -P 1|16 -r 100000 -t set,lpush,rpop,zadd`, then `EVALSHA "
                 "<sha> 1 evalkey:__rand_int__` of `return redis.call('INCR', KEYS[1])`. Requests per "
                 "run: " + "; ".join(f"c={c} P={p} {f}: {n:,}" for (c, p, f), n in sorted(n_by_shape.items())
                                      if f in ("always", "everysec")) + " (`no` as `everysec`).")
    if disk_jobs:
        L.append(f"- {disk_jobs:,} queued 500-byte jobs (compat/bench/disk.py: RPUSH into 4 lists, 1,024 "
                 "pipelined); RSS is VmRSS; restart time is from process start until PING answers and "
                 "LLEN counts every job, after SIGTERM and after SIGKILL.")
    L.append("")
    L += ["## Berth/Redis ratios", ""]
    L.append("Ratios divide Berth's figure by Redis's: for req/s and jobs/s above 1 means Berth is faster; "
             "for MiB and seconds above 1 means Berth uses more or takes longer.")
    L.append("")
    wide = len(columns) + len(ratios) > 8  # the matrix: figures and ratios in two tables
    groups = [(columns, []), ([], ratios)] if wide else [(columns, ratios)]
    for k, (cols, rats) in enumerate(groups):
        if k:
            L.append("")
        L.append("| measurement | unit | " + " | ".join(list(cols) + [r[0] for r in rats]) + " |")
        L.append("|---|---|" + "---:|" * (len(cols) + len(rats)))
        for label, unit, vals in trs:
            cells = [fmt(vals.get(c), unit) for c in cols]
            rs = [ratio(vals, n, d) for _, n, d in rats]
            if not cols and all(x is None for x in rs):
                continue
            L.append(f"| {label} | {unit_label(unit)} | "
                     + " | ".join(cells + ["" if x is None else f"{x:.2f}x" for x in rs]) + " |")
    if any(ratio(v, n, d) is not None for _, _, v in trs for _, n, d in ratios):
        L += ["", f"![Berth/Redis ratios]({name}.png)", ""]
    else:
        L += ["", "(No ratios: this run measured no Berth/Redis pair.)", ""]
    if disk_md.strip():
        L += ["## compat/bench/disk.py output", "", disk_md.strip(), ""]
    return "\n".join(L) + "\n"


def chart(mode, rows, info, path, quick):
    """Writes the PNG; returns None, or why there is no chart."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib missing"
    ratios = SIDE_RATIOS if mode == "side" else [MATRIX_RATIOS[i] for i in MATRIX_CHART]
    trs = [t for t in table_rows(mode, rows) if any(ratio(t[2], n, d) is not None for _, n, d in ratios)]
    if not trs:
        return "no Berth/Redis pair measured"
    k = len(ratios)
    bar = 0.8 / k
    fig, ax = plt.subplots(figsize=(11, max(4, 0.16 * len(trs) * k + 1.8)))
    cap = 3.0  # a ratio past this (fjall's sparse journal in a small run) would squash the rest
    xmax = min(cap, 1.05 * max(ratio(t[2], n, d) or 0 for t in trs for _, n, d in ratios))
    for i, (title, num, den) in enumerate(ratios):
        ys = [j + (i - (k - 1) / 2) * bar for j in range(len(trs))]
        xs = [ratio(t[2], num, den) or 0 for t in trs]
        ax.barh(ys, [min(x, xmax) for x in xs], height=bar, label=title)
        for y, x in zip(ys, xs):
            if x > xmax:
                ax.text(xmax, y, f" {x:.1f}x", va="center", ha="right", fontsize=6, color="white")
    ax.set_xlim(0, max(xmax, 1.1))
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(trs)))
    ax.set_yticklabels([f"{t[0]}{' (lower is better)' if t[1] in LOWER_IS_BETTER else ''}" for t in trs],
                       fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Berth / Redis")
    title = "Berth / Redis 7.0.15" if mode == "side" else "Berth persistence matrix / Redis 7.0.15"
    if quick:
        title += " - QUICK RUN, not a result"
    ax.set_title(f"{title}\n{info['date']}, {info['machine']}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
