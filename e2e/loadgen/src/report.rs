//! Results on disk: `results.json` (everything), `results.md` (tables), `chart.svg`.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::bench::{Results, Run, Scenario, Status, TargetCheck};
use crate::dialect::Dialect;
use crate::load::{LoadResult, RedisShardCpu, SendMode};
use crate::sweep::SweepResult;

pub fn write_all(results: &Results, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(results)? + "\n")?;
    std::fs::write(out.join("results.md"), markdown(results))?;
    chart(results, &out.join("chart.svg"))?;
    Ok(())
}

fn server_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Confab => "Confab",
        Dialect::Django => "Django Channels",
        Dialect::Socketio => "Socket.IO",
    }
}

/// A progress line for the terminal.
pub fn one_line(s: &Scenario, run: &Run) -> String {
    let head = format!("({}) {:<15} {:>5.1}s", s.id, server_name(run.server), run.wall_secs);
    match (&run.result, &run.reason) {
        (Some(r), _) if s.idle > 0 => format!(
            "{head}  {} conns ({} failed), {:.0} conn/s, RSS {} → {} KiB, {} B/conn",
            r.connections,
            r.connect_failures,
            r.connect_per_s,
            r.server_rss_before_kib,
            r.server_rss_after_kib,
            r.rss_per_connection_bytes.map_or("-".into(), |b| format!("{b:.0}"))
        ),
        (Some(r), _) if s.subscribers_per_room == 0 => format!(
            "{head}  {:.0} persisted/s, ack p50 {} p99 {}, server {:.2} cores, {} µs CPU/msg",
            r.acked_per_s,
            lat(r.ack_latency_us.as_ref().map(|l| l.p50)),
            lat(r.ack_latency_us.as_ref().map(|l| l.p99)),
            r.server_cpu_cores,
            opt1(r.server_cpu_us_per_ack)
        ),
        (Some(r), _) => format!(
            "{head}  {:.0} delivered/s, p50 {} p99 {} max {}{}, lost {}/{}, server {:.2} cores {} µs/msg{}, loadgen {:.2} cores",
            r.delivered_per_s,
            lat(r.latency_us.as_ref().map(|l| l.p50)),
            lat(r.latency_us.as_ref().map(|l| l.p99)),
            lat(r.latency_us.as_ref().map(|l| l.max)),
            r.echo_latency_us.as_ref().map_or(String::new(), |l| format!(", echo p50 {} p99 {}", lat(Some(l.p50)), lat(Some(l.p99)))),
            r.lost,
            r.expected,
            r.server_cpu_cores,
            opt1(r.server_cpu_us_per_delivery),
            if r.redis.is_empty() {
                String::new()
            } else {
                let shard = |s: &RedisShardCpu| {
                    if s.slots.is_empty() { format!("{:.2}", s.master_cpu_cores) } else { format!("{:.2}+{:.2}", s.master_cpu_cores, s.replica_cpu_cores) }
                };
                format!(" (redis {} cores)", r.redis.iter().map(shard).collect::<Vec<_>>().join(", "))
            },
            r.loadgen_cpu_cores
        ) + &r.sweep.as_ref().map_or(String::new(), |w| format!(", {}", sweep_cell(w))),
        (None, Some(reason)) => format!("{head}  {reason}"),
        (None, None) => head,
    }
}

/// `:17301 [0-5460] 0.12 + 0.02 (0.31 µs); …`, one entry per shard.
fn redis_cells(shards: &[RedisShardCpu]) -> String {
    if shards.is_empty() {
        return "-".into();
    }
    shards
        .iter()
        .map(|x| {
            let port = x.master.rsplit_once(':').map_or(x.master.as_str(), |(_, p)| p);
            let slots = if x.slots.is_empty() { String::new() } else { format!(" [{}]", x.slots) };
            let replica = if x.slots.is_empty() { String::new() } else { format!(" + {:.2}", x.replica_cpu_cores) };
            format!(":{port}{slots} {:.2}{replica} ({})", x.master_cpu_cores, x.master_cpu_us_per_delivery.map_or("-".into(), |v| format!("{v:.2} µs")))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the retention sweep did in a run, in one phrase.
fn sweep_cell(w: &SweepResult) -> String {
    format!(
        "sweep deleted {} of {} old messages in {} batches, {:.1} s from the server's start ({}/s); {} in the window ({}/s){}",
        w.deleted,
        w.seeded,
        w.batches,
        w.sweep_secs,
        rate(w.deleted_per_s),
        w.deleted_in_window,
        rate(w.deleted_per_s_in_window),
        if w.through_window { ", still deleting when it ended" } else { ", **done before the window ended**" }
    )
}

fn lat(us: Option<u64>) -> String {
    match us {
        None => "-".into(),
        Some(us) if us < 1_000 => format!("{us} µs"),
        Some(us) if us < 100_000 => format!("{:.1} ms", us as f64 / 1e3),
        Some(us) => format!("{:.0} ms", us as f64 / 1e3),
    }
}

fn opt1(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

fn rate(v: f64) -> String {
    if v >= 10_000.0 { format!("{:.0} k", v / 1e3) } else if v >= 1_000.0 { format!("{:.1} k", v / 1e3) } else { format!("{v:.0}") }
}

fn ok_result<'a>(runs: &'a [Run], scenario: &str, server: Dialect) -> Option<&'a LoadResult> {
    runs.iter().find(|r| r.scenario == scenario && r.server == server && r.status == Status::Ok).and_then(|r| r.result.as_ref())
}

/// Confab's targets, checked against the Confab runs that exist.
pub fn check_targets(scenarios: &[Scenario], runs: &[Run]) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let confab = |id: &str| runs.iter().find(|r| r.scenario == id && r.server == Dialect::Confab);
    let mut check = |id: &str, target: &str, f: &dyn Fn(&LoadResult) -> (String, bool)| {
        let Some(run) = confab(id) else { return };
        let (measured, met) = match (&run.result, run.status) {
            (Some(r), Status::Ok) => {
                let (m, ok) = f(r);
                (m, Some(ok))
            }
            _ => (run.reason.clone().unwrap_or_else(|| "no result".into()), None),
        };
        out.push(TargetCheck { scenario: id.to_owned(), target: target.to_owned(), measured, met });
    };
    let cpu = |r: &LoadResult| {
        let v = r.server_cpu_us_per_delivery.unwrap_or(f64::INFINITY);
        (format!("{v:.2} µs"), v <= 2.5)
    };
    let p99 = |r: &LoadResult| r.latency_us.as_ref().map_or(u64::MAX, |l| l.p99);
    check("a", "server CPU ≤ 2.5 µs per delivered message", &cpu);
    check("a", "≥ 250 000 delivered/s", &|r| (format!("{:.0}/s", r.delivered_per_s), r.delivered_per_s >= 250_000.0));
    let b_subs = scenarios.iter().find(|s| s.id == "b").map_or(1000, |s| s.subscribers_per_room);
    let offered = 200.0 * b_subs as f64;
    check("b", "server CPU ≤ 2 µs per delivered message", &|r| {
        let v = r.server_cpu_us_per_delivery.unwrap_or(f64::INFINITY);
        (format!("{v:.2} µs"), v <= 2.0)
    });
    check("b", &format!("all {offered:.0}/s delivered"), &|r| {
        (format!("{:.0}/s ({} skipped sends)", r.delivered_per_s, r.send_skipped), r.delivered_per_s >= 0.99 * offered && r.send_skipped == 0)
    });
    check("b", "0 lost", &|r| (format!("{} of {}", r.lost, r.expected), r.lost == 0 && r.expected > 0));
    check("b", "p99 ≤ 50 ms", &|r| (lat(Some(p99(r))), p99(r) <= 50_000));
    check("c", "0 lost", &|r| (format!("{} of {}", r.lost, r.expected), r.lost == 0 && r.expected > 0));
    check("c", "p99 ≤ 2 ms", &|r| (lat(Some(p99(r))), p99(r) <= 2_000));
    let c_cpu = ok_result(runs, "c", Dialect::Confab).and_then(|r| r.server_cpu_us_per_delivery);
    check("c-hook", "server CPU per delivery within 2× of (c) without the hook, 0 lost", &|r| match (r.server_cpu_us_per_delivery, c_cpu) {
        (Some(hooked), Some(plain)) if plain > 0.0 => (format!("{hooked:.1} µs vs {plain:.1} µs ({:.2}×), lost {}", hooked / plain, r.lost), hooked <= 2.0 * plain && r.lost == 0),
        _ => ("no (c) run to compare".into(), false),
    });
    // The sweep never stalls the message writer: (c)'s p99 with it running stays within 2× of
    // (c)'s without, in the same run.
    let c_p99 = ok_result(runs, "c", Dialect::Confab).and_then(|r| r.latency_us.as_ref()).map(|l| l.p99);
    check("c-sweep", "p99 within 2× of (c) without the sweep, 0 lost, the sweep deleting through the whole window", &|r| match (r.latency_us.as_ref(), c_p99, &r.sweep) {
        (Some(l), Some(plain), Some(w)) if plain > 0 => (
            format!("p99 {} vs {} ({:.2}×), lost {}, {} deleted in the window", lat(Some(l.p99)), lat(Some(plain)), l.p99 as f64 / plain as f64, r.lost, w.deleted_in_window),
            l.p99 <= 2 * plain && r.lost == 0 && w.through_window,
        ),
        _ => ("no (c) run, or no sweep, to compare".into(), false),
    });
    check("c-stream", "0 lost over the HTTP stream", &|r| (format!("{} of {}", r.lost, r.expected), r.lost == 0 && r.expected > 0));
    check("d", "≤ 8 KB RSS per idle authenticated connection", &|r| {
        let b = r.rss_per_connection_bytes.unwrap_or(f64::INFINITY);
        (format!("{:.1} KiB", b / 1024.0), b <= 8192.0 && r.connect_failures == 0)
    });
    for base in ["a", "c"] {
        // The same database as (f) when the benchmark ran it (a-pg), else the SQLite run.
        let pg_base = format!("{base}-pg");
        let (baseline, single) = match ok_result(runs, &pg_base, Dialect::Confab) {
            Some(r) => (pg_base.as_str(), Some(r.delivered_per_s)),
            None => (base, ok_result(runs, base, Dialect::Confab).map(|r| r.delivered_per_s)),
        };
        // Delivered/s against one instance's: met when the ratio reaches `floor`, nothing lost.
        let versus = |floor: f64| {
            move |r: &LoadResult| match single {
                Some(one) if one > 0.0 => {
                    let ratio = r.delivered_per_s / one;
                    (format!("{:.0}/s vs {:.0}/s ({:+.0}%), lost {}", r.delivered_per_s, one, (ratio - 1.0) * 100.0, r.lost), ratio >= floor && r.lost == 0)
                }
                _ => ("no single-instance run to compare".into(), false),
            }
        };
        check(&format!("f-{base}"), &format!("2 instances on Redis within 30% of one instance ({baseline})"), &versus(0.7));
        let shards = crate::bench::CLUSTER_SHARDS;
        check(&format!("f-{base}-rc2"), &format!("2 instances on a {shards}-shard Redis Cluster within 30% of one instance ({baseline}), 0 lost"), &versus(0.7));
        // A paced scenario offers the same rate to one instance and to three: "at least" is
        // then "all of it", within the 1% two runs of the same pacing differ by.
        let rc3 = format!("f-{base}-rc3");
        let paced = scenarios.iter().find(|s| s.id == rc3).is_some_and(|s| matches!(s.mode, SendMode::Rate(_)));
        let (floor, slack) = if paced { (0.99, " (paced: within 1%)") } else { (1.0, "") };
        check(&rc3, &format!("3 instances on {shards} shards deliver at least as much as one instance ({baseline}){slack}, 0 lost"), &versus(floor));
    }
    crate::write_path::check_targets(runs, &mut out);
    against_socketio(runs, &mut out);
    out
}

/// Confab against Socket.IO in the same run, scenario by scenario, on one node and with a
/// Redis layer on both: the bar is to be ahead in every one of them.
fn against_socketio(runs: &[Run], out: &mut Vec<TargetCheck>) {
    let pair = |id: &str| Some((ok_result(runs, id, Dialect::Confab)?, ok_result(runs, id, Dialect::Socketio)?));
    let mut check = |id: &str, target: &str, f: &dyn Fn(&LoadResult, &LoadResult) -> (String, bool)| {
        if !runs.iter().any(|r| r.scenario == id && r.server == Dialect::Socketio) {
            return;
        }
        let (measured, met) = match pair(id) {
            Some((c, p)) => {
                let (m, ok) = f(c, p);
                (m, Some(ok))
            }
            None => ("no result for both servers".into(), None),
        };
        out.push(TargetCheck { scenario: id.to_owned(), target: format!("vs Socket.IO: {target}"), measured, met });
    };
    let cpu = |r: &LoadResult| r.server_cpu_us_per_delivery.unwrap_or(f64::INFINITY);
    let p99 = |r: &LoadResult| r.latency_us.as_ref().map_or(u64::MAX, |l| l.p99);
    for id in ["a", "a-echo", "a-redis", "a-echo-redis"] {
        check(id, "delivered/s ≥ and CPU per delivery ≤", &|c, p| {
            (
                format!("{}/s vs {}/s, {:.2} vs {:.2} µs", rate(c.delivered_per_s), rate(p.delivered_per_s), cpu(c), cpu(p)),
                c.delivered_per_s >= p.delivered_per_s && cpu(c) <= cpu(p) && c.lost == 0,
            )
        });
    }
    for id in ["b", "b-redis"] {
        check(id, "0 lost, p99 ≤ and CPU per delivery ≤", &|c, p| {
            (
                format!("lost {}, p99 {} vs {}, {:.2} vs {:.2} µs", c.lost, lat(Some(p99(c))), lat(Some(p99(p))), cpu(c), cpu(p)),
                c.lost == 0 && c.expected > 0 && p99(c) <= p99(p) && cpu(c) <= cpu(p),
            )
        });
    }
    for id in ["c", "c-redis"] {
        check(id, "CPU per delivery ≤ 0.75×, p99 ≤ 1.1×, 0 lost", &|c, p| {
            let ratio = cpu(c) / cpu(p);
            (
                format!("{:.1} vs {:.1} µs ({ratio:.2}×), p99 {} vs {}", cpu(c), cpu(p), lat(Some(p99(c))), lat(Some(p99(p)))),
                ratio <= 0.75 && p99(c) as f64 <= 1.1 * p99(p) as f64 && c.lost == 0,
            )
        });
    }
    check("d", "RSS per idle connection ≤", &|c, p| {
        let (a, b) = (c.rss_per_connection_bytes.unwrap_or(f64::INFINITY), p.rss_per_connection_bytes.unwrap_or(0.0));
        (format!("{:.1} vs {:.1} KiB", a / 1024.0, b / 1024.0), a <= b)
    });
    for id in ["e16-sqlite", "e16-sqlite-redis"] {
        check(id, "persisted messages/s ≥ Socket.IO's acknowledged sends/s (it persists nothing)", &|c, p| {
            (format!("{}/s vs {}/s", rate(c.acked_per_s), rate(p.acked_per_s)), c.acked_per_s >= p.acked_per_s && c.ack_errors == 0)
        });
    }
}

fn markdown(results: &Results) -> String {
    let m = &results.meta;
    let mut s = String::new();
    let _ = writeln!(s, "# Confab benchmark results\n");
    let _ = writeln!(
        s,
        "Run {} on **{}** ({} CPUs, {} GiB, {}, Linux {}), load average at start {}. Profile `{:?}`, \
         {} s warm-up + {} s measured per run; the whole run took {:.0} s. Commit `{}`.\n",
        m.generated_at,
        m.machine.cpu_model,
        m.machine.cpus,
        m.machine.memory_gib,
        m.machine.os,
        m.machine.kernel,
        m.machine.load_average_at_start,
        m.profile,
        m.timing.warmup_secs,
        m.timing.duration_secs,
        m.wall_secs,
        m.git_rev
    );
    let _ = writeln!(
        s,
        "Servers pinned to CPU {}, load generator to CPU {}. Reproduce with `{}`.\n",
        m.machine.server_cpus.as_deref().unwrap_or("(any)"),
        m.machine.loadgen_cpus.as_deref().unwrap_or("(any)"),
        m.command
    );
    let versions: Vec<String> = m.versions.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "Versions: {}.\n", versions.join(", "));

    let _ = writeln!(s, "## Confab against the targets\n");
    let _ = writeln!(s, "| scenario | target | measured | met |\n|---|---|---|---|");
    for t in &results.targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(s, "| ({}) | {} | {} | {} |", t.scenario, t.target, t.measured.replace('|', "/"), met);
    }

    let _ = writeln!(s, "\n## Scenarios\n");
    for sc in &results.scenarios {
        let runs: Vec<&Run> = results.runs.iter().filter(|r| r.scenario == sc.id).collect();
        if runs.is_empty() {
            continue;
        }
        let _ = writeln!(s, "### ({}) {}\n", sc.id, sc.title);
        let _ = write!(s, "| |");
        for r in &runs {
            let _ = write!(s, " {} |", server_name(r.server));
        }
        let _ = write!(s, "\n|---|");
        for _ in &runs {
            let _ = write!(s, "---|");
        }
        s.push('\n');
        let row = |s: &mut String, label: &str, f: &dyn Fn(&LoadResult) -> String| {
            let _ = write!(s, "| {label} |");
            for r in &runs {
                let cell = match &r.result {
                    Some(res) => f(res),
                    None => r.reason.clone().unwrap_or_else(|| "-".into()),
                };
                let _ = write!(s, " {} |", cell.replace('|', "/"));
            }
            s.push('\n');
        };
        let _ = write!(s, "| backing |");
        for r in &runs {
            let _ = write!(s, " {} |", r.backing);
        }
        s.push('\n');
        if runs.iter().any(|r| !r.load_average.is_empty()) {
            let _ = write!(s, "| machine load average at start (1/5/15 min) |");
            for r in &runs {
                let _ = write!(s, " {} |", if r.load_average.is_empty() { "-" } else { &r.load_average });
            }
            s.push('\n');
        }
        if sc.idle > 0 {
            row(&mut s, "connections (failed)", &|r| format!("{} ({})", r.connections, r.connect_failures));
            row(&mut s, "connect (+auth) per second", &|r| format!("{:.0}", r.connect_per_s));
            row(&mut s, "server RSS before → after", &|r| format!("{:.1} → {:.1} MiB", r.server_rss_before_kib as f64 / 1024.0, r.server_rss_after_kib as f64 / 1024.0));
            row(&mut s, "**RSS per connection**", &|r| r.rss_per_connection_bytes.map_or("-".into(), |b| format!("**{:.1} KiB**", b / 1024.0)));
        } else if sc.subscribers_per_room == 0 {
            row(&mut s, "**persisted messages/s**", &|r| format!("**{}**", rate(r.acked_per_s)));
            row(&mut s, "ack latency p50 / p99 / max", &|r| {
                // No sample: nothing sent in the window arrived (a server far behind).
                r.ack_latency_us.as_ref().map_or_else(
                    || "- (no message sent in the window arrived)".into(),
                    |l| format!("{} / {} / {}", lat(Some(l.p50)), lat(Some(l.p99)), lat(Some(l.max))),
                )
            });
            row(&mut s, "errors", &|r| format!("{}", r.ack_errors));
            row(&mut s, "server CPU per message", &|r| r.server_cpu_us_per_ack.map_or("-".into(), |v| format!("{v:.1} µs")));
            row(&mut s, "server CPU (cores)", &|r| format!("{:.2}", r.server_cpu_cores));
        } else {
            row(&mut s, "**delivered/s**", &|r| format!("**{}**", rate(r.delivered_per_s)));
            row(&mut s, "latency p50 / p99 / max", &|r| {
                // No sample: nothing sent in the window arrived (a server far behind).
                r.latency_us.as_ref().map_or_else(
                    || "- (no message sent in the window arrived)".into(),
                    |l| format!("{} / {} / {}", lat(Some(l.p50)), lat(Some(l.p99)), lat(Some(l.max))),
                )
            });
            if runs.iter().any(|r| r.result.as_ref().is_some_and(|x| x.echo_latency_us.is_some())) {
                row(&mut s, "sender's own echo p50 / p99 / max", &|r| {
                    r.echo_latency_us.as_ref().map_or_else(|| "-".into(), |l| format!("{} / {} / {}", lat(Some(l.p50)), lat(Some(l.p99)), lat(Some(l.max))))
                });
            }
            row(&mut s, "lost / expected", &|r| format!("{} / {}", r.lost, r.expected));
            row(&mut s, "publisher sends acked/s (skipped)", &|r| format!("{} ({})", rate(r.acked_per_s), r.send_skipped));
            row(&mut s, "**server CPU per delivery**", &|r| r.server_cpu_us_per_delivery.map_or("-".into(), |v| format!("**{v:.2} µs**")));
            row(&mut s, "server CPU (cores)", &|r| format!("{:.2}", r.server_cpu_cores));
            if runs.iter().any(|r| r.result.as_ref().is_some_and(|x| !x.redis.is_empty())) {
                row(&mut s, "Redis CPU per shard (cores, master + replica; master µs/delivery)", &|r| redis_cells(&r.redis));
                row(&mut s, "server CPU without Redis (cores)", &|r| {
                    let redis: f64 = r.redis.iter().map(|x| x.master_cpu_cores + x.replica_cpu_cores).sum();
                    format!("{:.2}", (r.server_cpu_cores - redis).max(0.0))
                });
            }
            row(&mut s, "load generator CPU (cores, µs/delivery)", &|r| {
                format!("{:.2}, {}", r.loadgen_cpu_cores, r.loadgen_cpu_us_per_delivery.map_or("-".into(), |v| format!("{v:.2} µs")))
            });
            row(&mut s, "connect (+auth) per second", &|r| format!("{:.0}", r.connect_per_s));
            row(&mut s, "server RSS at end", &|r| format!("{:.1} MiB", r.server_rss_after_kib as f64 / 1024.0));
            if runs.iter().any(|r| r.result.as_ref().is_some_and(|x| x.sweep.is_some())) {
                row(&mut s, "retention sweep", &|r| r.sweep.as_ref().map_or("-".into(), sweep_cell));
                row(&mut s, "old messages written before the run (once per benchmark run)", &|r| {
                    r.sweep.as_ref().map_or("-".into(), |w| if w.seed_secs > 0.0 { format!("{} in {:.1} s", w.seeded, w.seed_secs) } else { format!("{} (reused)", w.seeded) })
                });
            }
        }
        row(&mut s, "closes by server", &|r| {
            if r.closes.is_empty() { "none".into() } else { r.closes.iter().map(|(c, n)| format!("{n}× {c}")).collect::<Vec<_>>().join(", ") }
        });
        s.push('\n');
    }
    s.push_str(&crate::people::markdown(&results.people));
    let _ = writeln!(s, "\n## Notes\n");
    for n in &m.notes {
        let _ = writeln!(s, "- {n}");
    }
    let failures: Vec<String> = results
        .runs
        .iter()
        .filter_map(|r| {
            let errs = r.result.as_ref().map(|x| x.errors.clone()).unwrap_or_default();
            (!errs.is_empty()).then(|| format!("- ({}) {}: {}", r.scenario, server_name(r.server), errs.join("; ")))
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "\nErrors seen by the load generator:\n");
        for f in failures {
            let _ = writeln!(s, "{f}");
        }
    }
    s
}

const COLORS: [RGBColor; 3] = [RGBColor(0xd9, 0x5f, 0x02), RGBColor(0x1b, 0x9e, 0x77), RGBColor(0x75, 0x70, 0xb3)];

struct Panel {
    title: &'static str,
    scenarios: Vec<String>,
    value: fn(&LoadResult) -> Option<f64>,
}

fn chart(results: &Results, path: &Path) -> anyhow::Result<()> {
    let delivery: Vec<String> = results.scenarios.iter().filter(|s| s.subscribers_per_room > 0).map(|s| s.id.clone()).collect();
    let panels = [
        Panel { title: "Delivered messages per second (log)", scenarios: delivery.clone(), value: |r| Some(r.delivered_per_s).filter(|v| *v > 0.0) },
        Panel { title: "p99 latency, ms (log)", scenarios: delivery.clone(), value: |r| r.latency_us.as_ref().map(|l| l.p99 as f64 / 1e3) },
        Panel { title: "Server CPU per delivered message, µs (log)", scenarios: delivery, value: |r| r.server_cpu_us_per_delivery },
        Panel {
            title: "RSS per idle connection, KiB",
            scenarios: results.scenarios.iter().filter(|s| s.idle > 0).map(|s| s.id.clone()).collect(),
            value: |r| r.rss_per_connection_bytes.map(|b| b / 1024.0),
        },
    ];
    let root = SVGBackend::new(path, (1200, 820)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(40);
    header.draw(&Text::new(
        format!("Confab vs Django Channels vs Socket.IO — {} ({} CPUs), {}", results.meta.machine.cpu_model, results.meta.machine.cpus, results.meta.generated_at),
        (10, 12),
        ("sans-serif", 16),
    ))?;
    let servers: Vec<Dialect> = crate::bench::ALL_SERVERS.into_iter().filter(|d| results.runs.iter().any(|r| r.server == *d)).collect();
    for (area, panel) in body.split_evenly((2, 2)).iter().zip(&panels) {
        draw_panel(area, panel, &servers, &results.runs)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel(area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, panel: &Panel, servers: &[Dialect], runs: &[Run]) -> anyhow::Result<()> {
    let n = panel.scenarios.len().max(1);
    let mut bars = Vec::new();
    for (i, id) in panel.scenarios.iter().enumerate() {
        for (j, &server) in servers.iter().enumerate() {
            if let Some(v) = ok_result(runs, id, server).and_then(panel.value) {
                bars.push((i, j, v));
            }
        }
    }
    let max = bars.iter().map(|b| b.2).fold(0.0f64, f64::max).max(1e-3);
    let min = bars.iter().map(|b| b.2).fold(f64::INFINITY, f64::min);
    let log = panel.title.contains("(log)");
    let lo = if log { (min.min(max) / 3.0).max(1e-3) } else { 0.0 };
    let hi = if log { max * 3.0 } else { max * 1.15 };
    let names = panel.scenarios.clone();
    let label = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 { names.get(i as usize).map(|s| format!("({s})")).unwrap_or_default() } else { String::new() }
    };
    let width = 0.8 / servers.len().max(1) as f64;
    let x_range = -0.5..(n as f64 - 0.5);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart.configure_mesh().disable_x_mesh().x_labels(n + 1).x_label_formatter(&label).y_labels(6).draw()?;
            for (j, &server) in servers.iter().enumerate() {
                let color = COLORS[j % COLORS.len()];
                chart
                    .draw_series(bars.iter().filter(|b| b.1 == j).map(|&(i, _, v)| {
                        let x0 = i as f64 - 0.4 + j as f64 * width;
                        Rectangle::new([(x0, lo), (x0 + width * 0.92, v)], color.filled())
                    }))?
                    .label(server_name(server))
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
            }
            chart.configure_series_labels().position(SeriesLabelPosition::UpperRight).background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
        }};
    }
    let mut builder = ChartBuilder::on(area);
    builder.caption(panel.title, ("sans-serif", 16)).margin(12).x_label_area_size(28).y_label_area_size(64);
    if log {
        draw!(builder.build_cartesian_2d(x_range, (lo..hi).log_scale())?);
    } else {
        draw!(builder.build_cartesian_2d(x_range, lo..hi)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_targets;
    use crate::bench::{Profile, Run, Status, catalog};
    use crate::dialect::Dialect;
    use crate::load::LoadResult;

    fn run(scenario: &str, delivered_per_s: f64, lost: u64) -> Run {
        Run {
            scenario: scenario.into(),
            server: Dialect::Confab,
            status: Status::Ok,
            reason: None,
            users: 1,
            backing: String::new(),
            load_average: String::new(),
            wall_secs: 1.0,
            result: Some(LoadResult { delivered_per_s, lost, expected: 1, ..LoadResult::default() }),
        }
    }

    fn met(runs: &[Run], scenario: &str) -> Option<bool> {
        let checks = check_targets(&catalog(Profile::Full), runs);
        checks.iter().find(|t| t.scenario == scenario).and_then(|t| t.met)
    }

    #[test]
    fn three_instances_on_the_cluster_must_deliver_what_one_instance_does_and_lose_nothing() {
        let base = |rc3: f64, lost: u64| vec![run("a-pg", 400_000.0, 0), run("c-pg", 10_000.0, 0), run("f-a-rc3", rc3, lost), run("f-c-rc3", 9_950.0, 0)];
        assert_eq!(met(&base(400_000.0, 0), "f-a-rc3"), Some(true));
        assert_eq!(met(&base(396_000.0, 0), "f-a-rc3"), Some(false), "flat out: no slack");
        assert_eq!(met(&base(500_000.0, 1), "f-a-rc3"), Some(false), "one lost");
        assert_eq!(met(&base(400_000.0, 0), "f-c-rc3"), Some(true), "paced: within 1%");
    }
}
