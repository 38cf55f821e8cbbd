//! Shared by the tests that run the fleetd binary: a command with a clean environment,
//! starting a process and waiting for the line it prints when ready, stopping it by signal.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A TCP port of 127.0.0.1 free a moment ago, for a server the test starts next.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The fleetd binary with no inherited fleetd settings and outside the repository (no `.env`).
pub fn fleetd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleetd"));
    clean_environment(&mut c);
    c
}

/// Removes the fleetd settings this process inherited from `c`'s environment and runs it
/// outside the repository (no `.env`), for a command that starts fleetd another way.
pub fn clean_environment(c: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("FLEETD_") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    c.current_dir(std::env::temp_dir());
}

/// Spawns `cmd` and waits at most `within` for a stdout line starting with `prefix`; returns
/// the process and the rest of that line (e.g. the address it listens on).
pub fn spawn_until(cmd: &mut Command, prefix: &'static str, within: Duration) -> (Child, String) {
    let (child, mut rests) = spawn_until_all(cmd, &[prefix], within);
    (child, rests.remove(0))
}

/// Like [`spawn_until`] for several lines: waits until a line starting with each prefix was
/// printed and returns their rests, in the order of `prefixes`.
pub fn spawn_until_all(
    cmd: &mut Command,
    prefixes: &[&'static str],
    within: Duration,
) -> (Child, Vec<String>) {
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn fleetd");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let wanted = prefixes.to_vec();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            for (i, prefix) in wanted.iter().enumerate() {
                if let Some(rest) = line.strip_prefix(prefix) {
                    let _ = tx.send((i, rest.to_owned()));
                }
            }
        }
    });
    let deadline = Instant::now() + within;
    let mut rests: Vec<Option<String>> = vec![None; prefixes.len()];
    while rests.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, rest)) => rests[i] = rests[i].take().or(Some(rest)),
            Err(_) => {
                let _ = child.kill();
                panic!("no {prefixes:?} lines within {within:?}")
            }
        }
    }
    (child, rests.into_iter().flatten().collect())
}

/// A fleetd process a test started, killed if the test ends before it stopped it (a failed
/// assertion), so no process outlives its test.
#[derive(Debug)]
pub struct Running(pub Option<Child>);

impl Running {
    /// Starts `cmd` (`fleetd serve …`) and waits up to a minute for the line it prints when it
    /// listens; returns the process and its base URL. For multi-threaded test runtimes (the
    /// wait blocks this thread, so the runtime's other tasks move away).
    pub fn serve(cmd: &mut Command) -> (Running, String) {
        let (child, addr) = tokio::task::block_in_place(|| {
            spawn_until(cmd, "fleetd listening on ", Duration::from_secs(60))
        });
        (Running(Some(child)), addr.trim().to_owned())
    }

    /// Stops the process with SIGTERM and asserts a clean exit within `within`.
    pub fn stop(mut self, within: Duration) {
        if let Some(c) = self.0.take() {
            tokio::task::block_in_place(|| stop(c, Signal::SIGTERM, within));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends `signal` and asserts a clean exit within `within`.
pub fn stop(mut child: Child, signal: Signal, within: Duration) {
    kill(Pid::from_raw(child.id() as i32), signal).expect("signal");
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "clean exit on {signal}: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fleetd did not exit within {within:?} of {signal}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
