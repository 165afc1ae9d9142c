//! Progress and cancellation: plain data that front ends adapt (indicatif bars, Tauri events, a `Vec` in tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One progress report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProgressEvent {
    /// Stage name (`walk`, `parse`, `resolve`, `store`).
    pub stage: &'static str,
    /// Units done so far.
    pub done: u64,
    /// Units in all, when known.
    pub total: Option<u64>,
    /// Short human text (the current file, a summary).
    pub message: String,
}

/// Receives progress events; called from worker threads.
pub trait Sink: Send + Sync {
    /// Handles one event.
    fn event(&self, ev: ProgressEvent);
}

/// A sink that drops every event.
pub struct NoProgress;

impl Sink for NoProgress {
    fn event(&self, _ev: ProgressEvent) {}
}

impl Sink for std::sync::Mutex<Vec<ProgressEvent>> {
    fn event(&self, ev: ProgressEvent) {
        if let Ok(mut events) = self.lock() {
            events.push(ev);
        }
    }
}

/// A cancellation flag shared between a front end (Ctrl-C, a Cancel button) and a running stage.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A fresh, un-cancelled flag.
    pub fn new() -> Self {
        Self::default()
    }
    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
