//! Progress bars (indicatif) for anything that runs longer than a few seconds; hidden when
//! disabled (tests, non-interactive runs that asked for quiet output).

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn new(enabled: bool, len: u64, message: &str) -> Progress {
        if !enabled {
            return Progress(None);
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template("{msg:32} [{elapsed_precise}] {bar:30} {pos}/{len}") {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        bar.tick();
        Progress(Some(bar))
    }

    pub fn inc(&self) {
        if let Some(b) = &self.0 {
            b.inc(1);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish();
        }
    }
}
