//! Progress on stderr for long work, drawn only when stderr is a terminal (scripts and logs
//! get nothing extra): a bar when the amount of work is known (verifying an audit log), a
//! spinner with the elapsed time when it is not (sealing or opening a backup, whose cost is
//! mostly the passphrase's key derivation).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Whether progress is drawn at all.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// The text of a bar: `[#########...........]  45%  verifying (12.3 of 27.1 MB)`.
pub fn bar_line(what: &str, done: u64, total: u64) -> String {
    const WIDTH: usize = 30;
    let frac = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    let filled = ((frac * WIDTH as f64) as usize).min(WIDTH);
    format!(
        "[{}{}] {:>3}%  {what} ({:.1} of {:.1} MB)",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        (frac * 100.0) as u32,
        done as f64 / 1e6,
        total as f64 / 1e6
    )
}

/// A bar redrawn at most ten times a second; cleared when dropped.
#[derive(Debug)]
pub struct Bar {
    what: String,
    last: Option<Instant>,
    on: bool,
}

impl Bar {
    /// A bar for `what`.
    pub fn new(what: &str) -> Bar {
        Bar {
            what: what.to_owned(),
            last: None,
            on: enabled(),
        }
    }

    /// Shows `done` of `total`.
    pub fn set(&mut self, done: u64, total: u64) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
            && done < total
        {
            return;
        }
        self.last = Some(now);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}", bar_line(&self.what, done, total));
        let _ = err.flush();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.on && self.last.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// A spinner with the elapsed time, on a thread of its own until dropped.
#[derive(Debug)]
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    /// Starts spinning beside `what` (does nothing when stderr is not a terminal).
    pub fn start(what: &str) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = enabled().then(|| {
            let (stop, what) = (stop.clone(), what.to_owned());
            std::thread::spawn(move || {
                let start = Instant::now();
                let frames = ['|', '/', '-', '\\'];
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r{} {what} ({:.1} s)",
                        frames[i % frames.len()],
                        start.elapsed().as_secs_f64()
                    );
                    let _ = err.flush();
                    drop(err);
                    i += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            })
        });
        Spinner { stop, thread }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_the_fraction_done() {
        assert_eq!(
            bar_line("verifying", 50, 100),
            "[###############...............]  50%  verifying (0.0 of 0.0 MB)"
        );
        assert!(bar_line("x", 0, 0).contains("100%"));
        assert!(bar_line("x", 3_000_000, 12_000_000).starts_with("[#######........"));
    }
}
