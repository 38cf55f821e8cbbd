//! CPU time and memory of processes from Linux's /proc: fleetd's own, PostgreSQL's (the
//! postmaster with its reaped and its live children) and the driver's.

use std::fs;

/// Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux architecture
/// fleetd runs on; /proc reports in it whatever the kernel's internal HZ).
const TICKS_PER_S: f64 = 100.0;

/// The fields of /proc/<pid>/stat the soak reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: u32,
    /// Ticks in user and system mode.
    pub utime: u64,
    pub stime: u64,
    /// Ticks of children that ended and were waited for.
    pub cutime: u64,
    pub cstime: u64,
}

/// Parses a /proc/<pid>/stat line. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): field n is f[n - 3]
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        ppid: u32::try_from(num(4)?).ok()?,
        utime: num(14)?,
        stime: num(15)?,
        cutime: num(16)?,
        cstime: num(17)?,
    })
}

fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU seconds process `pid` has used (all its threads, not its children).
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    stat(pid).map(|s| (s.utime + s.stime) as f64 / TICKS_PER_S)
}

/// CPU seconds of a process tree rooted at `root` one level deep: the root's own time, its
/// ended children's (cutime + cstime) and its live children's. PostgreSQL's backends are all
/// children of the postmaster, so this is the server's whole CPU; a backend that ended between
/// two samples moves from the live sum to cutime/cstime without being lost.
pub fn tree_cpu_s(root: u32) -> Option<f64> {
    let r = stat(root)?;
    let mut ticks = r.utime + r.stime + r.cutime + r.cstime;
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(s) = stat(pid).filter(|s| s.ppid == root) {
            ticks += s.utime + s.stime;
        }
    }
    Some(ticks as f64 / TICKS_PER_S)
}

/// Resident memory of process `pid`, bytes (VmRSS).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (postgres: fleetd (x) idle) S 4200 4200 4200 0 -1 4194560 500 0 0 0 \
                    731 215 12 3 20 0 1 0 12345 200000000 4000 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat { ppid: 4200, utime: 731, stime: 215, cutime: 12, cstime: 3 })
        );
        assert_eq!(parse_stat("4242 (cut"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_resident_memory() {
        // burn a little CPU so the counters are not zero
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert_ne!(x, 1);
        let me = std::process::id();
        let own = process_cpu_s(me).unwrap_or(0.0);
        assert!(own > 0.0);
        assert!(tree_cpu_s(me).is_some_and(|s| s >= own), "the tree counts its root");
        assert!(rss_bytes(me).is_some_and(|b| b > 1024 * 1024));
        assert_eq!(process_cpu_s(u32::MAX), None);
    }
}
