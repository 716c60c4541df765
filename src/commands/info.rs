//! INFO: the sections and fields Redis 7.0 reports, as CRLF `key:value` lines.

use std::fmt::Write as _;
use std::sync::OnceLock;

use bytes::Bytes;

use super::args::lower;
use super::connection::VERSION;
use super::introspection::rss_bytes;
use super::{Command, Ctx, Flags as F};
use crate::protocol::Reply;
use crate::server::now_us;

pub const INFO: Command = Command::new("info", -1, F::LOADING | F::STALE, info).doc(
    "server",
    "Get information and statistics about the server",
    "[section [section ...]]",
);

/// Sections in the order Redis prints them.
const ORDER: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

fn info(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut wanted: Vec<&str> = Vec::new();
    if argv.len() == 1 {
        wanted.extend(DEFAULT);
    }
    for a in &argv[1..] {
        match lower(a).as_str() {
            "default" => wanted.extend(DEFAULT),
            // Without modules, `everything` (all + module sections) is `all`.
            "all" | "everything" => wanted.extend(ORDER),
            "module_list" => wanted.push("modules"),
            s => {
                if let Some(name) = ORDER.iter().find(|n| **n == s) {
                    wanted.push(name);
                }
            }
        }
    }
    let mut out = String::new();
    for section in ORDER.iter().filter(|s| wanted.contains(s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        write_section(ctx, section, &mut out);
    }
    Reply::Verbatim(Bytes::from(out))
}

/// `hdr_value_at_percentile` over a histogram of bucket -> count.
fn percentile(h: &std::collections::BTreeMap<u64, u64>, pct: f64) -> u64 {
    let total: u64 = h.values().sum();
    let want = ((pct / 100.0 * total as f64) + 0.5) as u64;
    let want = want.max(1);
    let mut seen = 0;
    for (v, n) in h {
        seen += n;
        if seen >= want {
            return crate::server::core::hdr_highest(*v);
        }
    }
    0
}

fn random_hex40() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("hex"))
        .collect()
}

fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(random_hex40)
}

fn repl_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(random_hex40)
}

/// `bytesToHuman`.
pub fn human_bytes(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if d < K {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else {
        format!("{:.2}P", d / (K * K * K * K * K))
    }
}

/// User and system CPU seconds of a /proc stat file (fields 14 and 15, in clock ticks).
fn cpu_times(path: &str) -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string(path) else {
        return (0.0, 0.0);
    };
    // The command name (field 2) is parenthesized and may contain spaces.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    // After ')' come field 3 onwards: utime is field 14 -> index 11, stime index 12.
    (tick(11), tick(12))
}

fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

fn write_section(ctx: &mut Ctx, section: &str, out: &mut String) {
    let w = &*ctx.w;
    let now_ms = ctx.now;
    match section {
        "server" => {
            let uptime = ((now_ms - w.started_ms) / 1000).max(0);
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            out.push_str("# Server\r\n");
            line!(out, "redis_version:{VERSION}");
            line!(out, "redis_git_sha1:00000000");
            line!(out, "redis_git_dirty:0");
            line!(out, "redis_build_id:0");
            line!(out, "redis_mode:standalone");
            line!(out, "os:Linux {release} {}", std::env::consts::ARCH);
            line!(out, "arch_bits:64");
            line!(out, "monotonic_clock:POSIX clock_gettime");
            line!(out, "multiplexing_api:epoll");
            line!(out, "atomicvar_api:c11-builtin");
            line!(out, "gcc_version:0.0.0");
            line!(out, "process_id:{}", std::process::id());
            line!(out, "process_supervised:no");
            line!(out, "run_id:{}", run_id());
            line!(out, "tcp_port:{}", w.config.get("port"));
            line!(out, "server_time_usec:{}", now_us());
            line!(out, "uptime_in_seconds:{uptime}");
            line!(out, "uptime_in_days:{}", uptime / 86400);
            line!(out, "hz:{}", w.config.get("hz"));
            line!(out, "configured_hz:{}", w.config.get("hz"));
            line!(out, "lru_clock:{}", (now_ms / 1000) & 0xff_ffff);
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            line!(out, "executable:{exe}");
            let file = w
                .config
                .file
                .as_ref()
                .and_then(|f| std::fs::canonicalize(f).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            line!(out, "config_file:{file}");
            line!(out, "io_threads_active:0");
        }
        "clients" => {
            let blocked = w.clients.values().filter(|c| c.blocked.is_some()).count();
            let in_timeout = w.blocking.deadlines.len();
            out.push_str("# Clients\r\n");
            line!(out, "connected_clients:{}", w.clients.len());
            line!(out, "cluster_connections:0");
            line!(out, "maxclients:{}", w.config.get("maxclients"));
            line!(out, "client_recent_max_input_buffer:0");
            line!(out, "client_recent_max_output_buffer:0");
            line!(out, "blocked_clients:{blocked}");
            line!(out, "tracking_clients:{}", w.tracking.clients);
            line!(out, "clients_in_timeout_table:{in_timeout}");
        }
        "memory" => {
            let rss = rss_bytes();
            let used = rss;
            let maxmemory = w.config.get_i64("maxmemory").max(0) as u64;
            let system = total_memory();
            out.push_str("# Memory\r\n");
            line!(out, "used_memory:{used}");
            line!(out, "used_memory_human:{}", human_bytes(used));
            line!(out, "used_memory_rss:{rss}");
            line!(out, "used_memory_rss_human:{}", human_bytes(rss));
            line!(out, "used_memory_peak:{used}");
            line!(out, "used_memory_peak_human:{}", human_bytes(used));
            line!(out, "used_memory_peak_perc:100.00%");
            line!(out, "used_memory_overhead:0");
            line!(out, "used_memory_startup:0");
            line!(out, "used_memory_dataset:{used}");
            line!(out, "used_memory_dataset_perc:100.00%");
            line!(out, "allocator_allocated:{used}");
            line!(out, "allocator_active:{used}");
            line!(out, "allocator_resident:{rss}");
            line!(out, "total_system_memory:{system}");
            line!(out, "total_system_memory_human:{}", human_bytes(system));
            line!(out, "used_memory_lua:0");
            line!(out, "used_memory_vm_eval:0");
            line!(out, "used_memory_lua_human:0B");
            line!(out, "used_memory_scripts_eval:0");
            line!(out, "number_of_cached_scripts:0");
            let libs = &w.functions.libs;
            line!(out, "number_of_functions:{}", libs.function_count());
            line!(out, "number_of_libraries:{}", libs.libs.len());
            line!(out, "used_memory_vm_functions:0");
            line!(out, "used_memory_vm_total:0");
            line!(out, "used_memory_vm_total_human:0B");
            line!(out, "used_memory_functions:0");
            line!(out, "used_memory_scripts:0");
            line!(out, "used_memory_scripts_human:0B");
            line!(out, "maxmemory:{maxmemory}");
            line!(out, "maxmemory_human:{}", human_bytes(maxmemory));
            line!(out, "maxmemory_policy:{}", w.config.get("maxmemory-policy"));
            line!(out, "allocator_frag_ratio:1.00");
            line!(out, "allocator_frag_bytes:0");
            line!(out, "allocator_rss_ratio:1.00");
            line!(out, "allocator_rss_bytes:0");
            line!(out, "rss_overhead_ratio:1.00");
            line!(out, "rss_overhead_bytes:0");
            line!(out, "mem_fragmentation_ratio:1.00");
            line!(out, "mem_fragmentation_bytes:0");
            line!(out, "mem_not_counted_for_evict:0");
            line!(out, "mem_replication_backlog:0");
            line!(out, "mem_total_replication_buffers:0");
            line!(out, "mem_clients_slaves:0");
            line!(out, "mem_clients_normal:0");
            line!(out, "mem_cluster_links:0");
            line!(out, "mem_aof_buffer:0");
            line!(out, "mem_allocator:libc");
            line!(out, "active_defrag_running:0");
            line!(out, "lazyfree_pending_objects:0");
            line!(out, "lazyfreed_objects:0");
        }
        "persistence" => {
            let p = w.persist.as_deref();
            let aof = p.is_some();
            let unsynced = p.map(|p| {
                let synced = p
                    .status
                    .synced_lsn
                    .load(std::sync::atomic::Ordering::Relaxed);
                p.unsynced
                    .iter()
                    .filter(|(l, _)| *l > synced)
                    .map(|(_, n)| n)
                    .sum::<u64>()
            });
            let last_save = p
                .map(|p| {
                    p.status
                        .last_sync
                        .load(std::sync::atomic::Ordering::Relaxed)
                })
                .unwrap_or(w.last_save);
            let write_ok = p.is_none_or(|p| p.misconf().is_none());
            out.push_str("# Persistence\r\n");
            line!(out, "loading:{}", w.loading.is_some() as u8);
            for f in [
                "async_loading:0",
                "current_cow_peak:0",
                "current_cow_size:0",
                "current_cow_size_age:0",
                "current_fork_perc:0.00",
                "current_save_keys_processed:0",
                "current_save_keys_total:0",
            ] {
                line!(out, "{f}");
            }
            line!(
                out,
                "rdb_changes_since_last_save:{}",
                unsynced.unwrap_or(w.dirty)
            );
            line!(out, "rdb_bgsave_in_progress:0");
            line!(out, "rdb_last_save_time:{}", last_save);
            for f in [
                "rdb_last_bgsave_status:ok",
                "rdb_last_bgsave_time_sec:-1",
                "rdb_current_bgsave_time_sec:-1",
                "rdb_saves:0",
                "rdb_last_cow_size:0",
            ] {
                line!(out, "{f}");
            }
            line!(
                out,
                "rdb_last_load_keys_expired:{}",
                p.map_or(0, |p| p.expired_at_load)
            );
            line!(
                out,
                "rdb_last_load_keys_loaded:{}",
                p.map_or(0, |p| p.loaded_keys)
            );
            line!(out, "aof_enabled:{}", aof as u8);
            for f in [
                "aof_rewrite_in_progress:0",
                "aof_rewrite_scheduled:0",
                "aof_last_rewrite_time_sec:-1",
                "aof_current_rewrite_time_sec:-1",
                "aof_last_bgrewrite_status:ok",
                "aof_rewrites:0",
                "aof_rewrites_consecutive_failures:0",
            ] {
                line!(out, "{f}");
            }
            line!(
                out,
                "aof_last_write_status:{}",
                if write_ok { "ok" } else { "err" }
            );
            for f in [
                "aof_last_cow_size:0",
                "module_fork_in_progress:0",
                "module_fork_last_cow_size:0",
            ] {
                line!(out, "{f}");
            }
            for f in w.loading_info().unwrap_or_default() {
                line!(out, "{f}");
            }
            if let Some(p) = p {
                let st = &p.status;
                let ld =
                    |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
                line!(out, "berth_storage_engine:{}", p.engine);
                line!(out, "berth_appendfsync:{}", p.mode_text);
                line!(out, "berth_lsn:{}", p.lsn);
                line!(out, "berth_durable_lsn:{}", ld(&st.durable_now));
                line!(out, "berth_commit_batches:{}", ld(&st.batches));
                line!(out, "berth_syncs:{}", ld(&st.syncs));
                line!(out, "berth_log_bytes:{}", ld(&st.log_bytes));
                line!(out, "berth_log_sync_us:{}", ld(&st.sync_us));
                line!(out, "berth_log_records:{}", ld(&st.log_records));
                line!(out, "berth_checkpoint_lsn:{}", ld(&st.checkpoint_lsn));
                line!(out, "berth_checkpoints:{}", ld(&st.checkpoints));
                line!(
                    out,
                    "berth_checkpoint_records:{}",
                    ld(&st.checkpoint_records)
                );
                line!(
                    out,
                    "berth_checkpoint_skipped_deletes:{}",
                    ld(&st.checkpoint_skipped)
                );
                line!(out, "berth_last_checkpoint_ms:{}", ld(&st.checkpoint_ms));
                line!(
                    out,
                    "berth_store_failing:{}",
                    st.store_failing.load(std::sync::atomic::Ordering::Relaxed) as u8
                );
                line!(out, "berth_log_replayed_write_sets:{}", p.replayed);
                line!(out, "berth_disk_bytes:{}", ld(&st.disk_size));
                line!(out, "berth_reclaim_pending:{}", ld(&st.gc_pending));
                line!(out, "berth_log_retries:{}", ld(&st.retries));
                line!(out, "berth_log_recoveries:{}", ld(&st.recoveries));
                line!(out, "berth_store_retries:{}", ld(&st.store_retries));
                line!(out, "berth_store_recoveries:{}", ld(&st.store_recoveries));
                line!(out, "berth_loaded_keys:{}", p.loaded_keys);
                line!(out, "berth_load_expired_keys:{}", p.expired_at_load);
                line!(out, "berth_load_time_ms:{}", p.load_ms);
                line!(out, "berth_load_garbage_records:{}", p.garbage_at_load);
            }
        }
        "stats" => {
            let s = &w.stats;
            out.push_str("# Stats\r\n");
            line!(out, "total_connections_received:{}", s.total_connections);
            line!(out, "total_commands_processed:{}", s.total_commands);
            line!(out, "instantaneous_ops_per_sec:0");
            line!(out, "total_net_input_bytes:{}", s.net_input_bytes);
            line!(out, "total_net_output_bytes:{}", s.net_output_bytes);
            for f in [
                "total_net_repl_input_bytes:0",
                "total_net_repl_output_bytes:0",
                "instantaneous_input_kbps:0.00",
                "instantaneous_output_kbps:0.00",
                "instantaneous_input_repl_kbps:0.00",
                "instantaneous_output_repl_kbps:0.00",
            ] {
                line!(out, "{f}");
            }
            line!(out, "rejected_connections:{}", s.rejected_connections);
            for f in ["sync_full:0", "sync_partial_ok:0", "sync_partial_err:0"] {
                line!(out, "{f}");
            }
            line!(out, "expired_keys:{}", s.expired_keys);
            for f in [
                "expired_stale_perc:0.00",
                "expired_time_cap_reached_count:0",
                "expire_cycle_cpu_milliseconds:0",
                "evicted_keys:0",
                "evicted_clients:0",
                "total_eviction_exceeded_time:0",
                "current_eviction_exceeded_time:0",
            ] {
                line!(out, "{f}");
            }
            line!(out, "keyspace_hits:{}", s.keyspace_hits);
            line!(out, "keyspace_misses:{}", s.keyspace_misses);
            line!(out, "pubsub_channels:{}", w.pubsub.channels.len());
            line!(out, "pubsub_patterns:{}", w.pubsub.patterns.len());
            line!(
                out,
                "pubsubshard_channels:{}",
                w.pubsub.shard_channels.len()
            );
            for f in [
                "latest_fork_usec:0",
                "total_forks:0",
                "migrate_cached_sockets:0",
                "slave_expires_tracked_keys:0",
                "active_defrag_hits:0",
                "active_defrag_misses:0",
                "active_defrag_key_hits:0",
                "active_defrag_key_misses:0",
                "total_active_defrag_time:0",
                "current_active_defrag_time:0",
            ] {
                line!(out, "{f}");
            }
            let t = &w.tracking;
            line!(out, "tracking_total_keys:{}", t.total_keys());
            line!(out, "tracking_total_items:{}", t.total_items());
            line!(out, "tracking_total_prefixes:{}", t.total_prefixes());
            line!(out, "unexpected_error_replies:0");
            let errors: u64 = s.errors.values().sum();
            line!(out, "total_error_replies:{errors}");
            for f in [
                "dump_payload_sanitizations:0",
                "total_reads_processed:0",
                "total_writes_processed:0",
                "io_threaded_reads_processed:0",
                "io_threaded_writes_processed:0",
                "reply_buffer_shrinks:0",
                "reply_buffer_expands:0",
            ] {
                line!(out, "{f}");
            }
        }
        "replication" => {
            out.push_str("# Replication\r\n");
            line!(out, "role:master");
            line!(out, "connected_slaves:0");
            line!(out, "master_failover_state:no-failover");
            line!(out, "master_replid:{}", repl_id());
            line!(
                out,
                "master_replid2:0000000000000000000000000000000000000000"
            );
            line!(out, "master_repl_offset:0");
            line!(out, "second_repl_offset:-1");
            line!(out, "repl_backlog_active:0");
            line!(out, "repl_backlog_size:1048576");
            line!(out, "repl_backlog_first_byte_offset:0");
            line!(out, "repl_backlog_histlen:0");
        }
        "cpu" => {
            let (user, sys) = cpu_times("/proc/self/stat");
            let (tuser, tsys) = cpu_times("/proc/thread-self/stat");
            out.push_str("# CPU\r\n");
            line!(out, "used_cpu_sys:{sys:.6}");
            line!(out, "used_cpu_user:{user:.6}");
            line!(out, "used_cpu_sys_children:0.000000");
            line!(out, "used_cpu_user_children:0.000000");
            line!(out, "used_cpu_sys_main_thread:{tsys:.6}");
            line!(out, "used_cpu_user_main_thread:{tuser:.6}");
        }
        "modules" => out.push_str("# Modules\r\n"),
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            let mut names: Vec<_> = w.stats.commands.iter().collect();
            names.sort_by_key(|(n, _)| **n);
            for (name, s) in names {
                let per = if s.calls == 0 {
                    0.0
                } else {
                    s.usec as f64 / s.calls as f64
                };
                line!(
                    out,
                    "cmdstat_{name}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}",
                    s.calls,
                    s.usec,
                    s.rejected,
                    s.failed
                );
            }
        }
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            let mut errs: Vec<_> = w.stats.errors.iter().collect();
            errs.sort();
            for (code, n) in errs {
                line!(out, "errorstat_{code}:count={n}");
            }
        }
        "latencystats" => {
            out.push_str("# Latencystats\r\n");
            let mut names: Vec<_> = w
                .stats
                .commands
                .iter()
                .filter(|(_, s)| s.calls > 0)
                .collect();
            names.sort_by_key(|(n, _)| **n);
            for (name, s) in names {
                let p = |pct: f64| percentile(&s.latency, pct) as f64 / 1000.0;
                line!(
                    out,
                    "latency_percentiles_usec_{name}:p50={:.3},p99={:.3},p99.9={:.3}",
                    p(50.0),
                    p(99.0),
                    p(99.9)
                );
            }
        }
        "cluster" => {
            out.push_str("# Cluster\r\n");
            line!(out, "cluster_enabled:0");
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for (i, db) in w.keyspace.dbs.iter().enumerate() {
                if !db.is_empty() {
                    line!(
                        out,
                        "db{i}:keys={},expires={},avg_ttl=0",
                        db.len(),
                        db.expires_count()
                    );
                }
            }
        }
        _ => {}
    }
}
