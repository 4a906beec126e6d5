//! What the commands share about the terminal and the process: output that
//! survives a closed pipe, the progress bar, and the stop signals.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `println!` for a command's output that goes quiet once the reader has
/// gone away, as in `shorts digest send --dry-run | head`, instead of
/// panicking on the broken pipe; the command still ends with its own exit code.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::terminal::print_line(format_args!($($arg)*))
    };
}
pub(crate) use out;

pub fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    static READER_GONE: AtomicBool = AtomicBool::new(false);
    if READER_GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}")
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        READER_GONE.store(true, Ordering::Relaxed);
    }
}

/// A progress bar on stderr when it is a terminal; nothing under cron.
pub struct ProgressLine {
    enabled: bool,
    bar: std::sync::OnceLock<indicatif::ProgressBar>,
}

impl ProgressLine {
    pub fn new(quiet: bool) -> Self {
        ProgressLine {
            enabled: !quiet && std::io::stderr().is_terminal(),
            bar: std::sync::OnceLock::new(),
        }
    }

    pub fn update(&self, number: i64, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} ({rate}, {eta} left)",
            ) {
                // indicatif's own `{per_sec}` shows "1,665.4332/s".
                let rate = |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                };
                bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
            }
            bar
        });
        bar.set_message(format!("digest #{number}"));
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }

    pub fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// SIGTERM and SIGINT set the returned flag (a send then finishes the message
/// in flight and stops); a second SIGINT exits at once.
pub fn stop_on_signals() -> &'static AtomicBool {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&flag));
            let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
        }
        flag
    })
}
