//! A one-line progress display on stderr for long scans (TTY only).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::collect::Stats;

pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Ticker {
    pub fn start(stats: Arc<Stats>) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut err = std::io::stderr();
            while !flag.load(Ordering::Relaxed) {
                let _ = write!(err, "\r\x1b[2K{}", line(&stats));
                let _ = err.flush();
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        });
        Ticker { stop, handle }
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

fn line(s: &Stats) -> String {
    format!(
        "collecting: accounts {}/{}, tasks {}/{}, {} API calls, {} retries",
        s.accounts_done.load(Ordering::Relaxed),
        s.accounts_total.load(Ordering::Relaxed),
        s.tasks_done.load(Ordering::Relaxed),
        s.tasks_total.load(Ordering::Relaxed),
        s.calls.load(Ordering::Relaxed),
        s.retries()
    )
}
