//! What the flood measures and reports: the child's resident memory
//! (`/proc/<pid>/status`), the bound its configuration implies for the
//! flood, and the verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::BoxError;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// What each of a session's two message buffers (client and upstream side)
/// holds without charging `max_buffered_bytes`: dsql-local's
/// `FREE_PER_BUFFER`.
pub(super) const FREE_PER_BUFFER: u64 = 64 * KIB;
/// The relay's two outgoing batch buffers per session (client → upstream,
/// upstream → client), 16 KiB each at the start.
pub(super) const OUT_BUFFERS: u64 = 2 * 16 * KIB;
/// Everything else one connection holds: rustls' state (its record buffers
/// up to 16 KiB each way, the handshake's keys and transcript), the Tokio
/// task and its futures, the socket. An allowance, not a measurement:
/// generous against what rustls and Tokio document.
pub(super) const PER_CONNECTION: u64 = 100 * KIB;
/// What the process may add without any connection: allocator arenas
/// (glibc keeps freed memory for reuse, one arena per thread), thread
/// stacks touched deeper, the upstream role cache.
pub(super) const FIXED: u64 = 16 * MIB;

/// `VmHWM` and `VmRSS` of a process, in bytes.
#[derive(Clone, Copy, Debug, Serialize)]
pub(super) struct Memory {
    pub(super) hwm: u64,
    pub(super) rss: u64,
}

impl Memory {
    /// Reads `/proc/<pid>/status`.
    pub(super) fn of(pid: u32) -> Result<Self, BoxError> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("cannot read the memory of process {pid}: {e}"))?;
        let kib = |name: &str| -> Result<u64, BoxError> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))?;
            let value = line.split_whitespace().nth(1).ok_or("an empty status line")?;
            Ok(value.parse::<u64>()? * KIB)
        };
        Ok(Self {
            hwm: kib("VmHWM:")?,
            rss: kib("VmRSS:")?,
        })
    }
}

/// Resets the peak (`VmHWM`) of `pid` to its current resident set, so that
/// the next reading is the peak since now (Linux 4.0 and later, for a
/// process of the same user). `false` when the kernel refuses.
pub(super) fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The limits dsql-local reported it runs with.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Settings {
    pub(super) max_startup_packet: u64,
    pub(super) max_message_size: u64,
    pub(super) max_buffered_bytes: u64,
    pub(super) max_pending_handshakes: u64,
    pub(super) max_connections: u64,
    pub(super) handshake_timeout_ms: u64,
    pub(super) connection_rate: String,
}

/// The resident memory the configuration lets the flood add: the shared
/// buffer budget, what each session holds outside it, what each handshake
/// in progress may hold, and a fixed allowance.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Bound {
    pub(super) max_buffered_bytes: u64,
    /// Authenticated sessions the flood holds at once (at most).
    pub(super) sessions: u64,
    /// 2 × `FREE_PER_BUFFER` + `OUT_BUFFERS` + `PER_CONNECTION`.
    pub(super) per_session: u64,
    /// Handshakes in progress at once: at most `max_pending_handshakes`.
    pub(super) handshakes: u64,
    /// `max_startup_packet` + `PER_CONNECTION`.
    pub(super) per_handshake: u64,
    pub(super) fixed: u64,
    pub(super) total: u64,
}

impl Bound {
    pub(super) fn new(settings: &Settings, sessions: u64, half_open: u64) -> Self {
        let sessions = sessions.min(settings.max_connections);
        let handshakes = half_open.min(settings.max_pending_handshakes);
        let per_session = 2 * FREE_PER_BUFFER + OUT_BUFFERS + PER_CONNECTION;
        let per_handshake = settings.max_startup_packet + PER_CONNECTION;
        Self {
            max_buffered_bytes: settings.max_buffered_bytes,
            sessions,
            per_session,
            handshakes,
            per_handshake,
            fixed: FIXED,
            total: settings.max_buffered_bytes + sessions * per_session + handshakes * per_handshake + FIXED,
        }
    }
}

/// One phase of the flood.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Phase {
    pub(super) name: &'static str,
    pub(super) what: String,
    pub(super) seconds: f64,
    /// `VmHWM` at the end of the phase (since the reset before it, when the
    /// kernel allows resets).
    pub(super) peak: u64,
    /// `VmRSS` at the end of the phase.
    pub(super) rss: u64,
    /// How the server ended the phase's connections, by outcome.
    pub(super) endings: BTreeMap<String, u64>,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Report {
    pub(super) pid: u32,
    pub(super) settings: Settings,
    /// After startup and a few sessions opened and closed.
    pub(super) idle: Memory,
    /// What the increase is measured from: `VmRSS` when the peak could be
    /// reset before the flood, else the idle `VmHWM`.
    pub(super) baseline: u64,
    pub(super) peak_reset: bool,
    pub(super) phases: Vec<Phase>,
    /// The highest `VmHWM` of any phase.
    pub(super) peak: u64,
    pub(super) increase: u64,
    pub(super) bound: Bound,
    /// Once every connection of the flood is closed.
    pub(super) after: Memory,
    pub(super) served_after: bool,
    /// dsql-local's own counters at the end (`stats`).
    pub(super) child_stats: String,
    pub(super) pass: bool,
}

/// Bytes as MiB with one decimal.
pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

impl Report {
    pub(super) fn render(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# dsql-local under a flood of hostile input (pid {})\n",
            self.pid
        );
        let _ = writeln!(
            out,
            "bounds: startup packet {} B, message {}, buffered bytes {}, {} handshakes at once, \
             {} connections, handshake timeout {} ms, connection rate {}\n",
            s.max_startup_packet,
            mib(s.max_message_size),
            mib(s.max_buffered_bytes),
            s.max_pending_handshakes,
            s.max_connections,
            s.handshake_timeout_ms,
            s.connection_rate
        );
        let _ = writeln!(
            out,
            "| when | VmHWM | VmRSS | seconds | how the server ended the connections |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        let _ = writeln!(
            out,
            "| idle | {} | {} | | |",
            mib(self.idle.hwm),
            mib(self.idle.rss)
        );
        for phase in &self.phases {
            let endings: Vec<String> = phase.endings.iter().map(|(k, n)| format!("{n} {k}")).collect();
            let _ = writeln!(
                out,
                "| {}: {} | {} | {} | {:.1} | {} |",
                phase.name,
                phase.what,
                mib(phase.peak),
                mib(phase.rss),
                phase.seconds,
                endings.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "| after, all closed | {} | {} | | |",
            mib(self.after.hwm),
            mib(self.after.rss)
        );
        let b = &self.bound;
        let _ = writeln!(
            out,
            "\nbaseline {} ({}); peak {}; increase {}",
            mib(self.baseline),
            if self.peak_reset {
                "VmRSS when idle, VmHWM reset to it before each phase"
            } else {
                "idle VmHWM: the kernel refused to reset it"
            },
            mib(self.peak),
            mib(self.increase)
        );
        let _ = writeln!(
            out,
            "bound {} = max_buffered_bytes {} + {} sessions × {} KiB + {} handshakes × {} KiB + fixed {}",
            mib(b.total),
            mib(b.max_buffered_bytes),
            b.sessions,
            b.per_session / KIB,
            b.handshakes,
            b.per_handshake / KIB,
            mib(b.fixed)
        );
        let _ = writeln!(
            out,
            "served a query afterwards: {}",
            if self.served_after { "yes" } else { "NO" }
        );
        let _ = writeln!(out, "dsql-local: {}", self.child_stats);
        let _ = writeln!(
            out,
            "\n**{}**: the peak increase {} {} the bound {}.",
            if self.pass { "PASS" } else { "FAIL" },
            mib(self.increase),
            if self.increase <= b.total {
                "stays under"
            } else {
                "exceeds"
            },
            mib(b.total)
        );
        out
    }
}
