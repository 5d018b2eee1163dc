//! Interrupting a decode call whose every request has been abandoned. llama.cpp checks an
//! abort callback between graph nodes, so a long prompt chunk stops within ~0.1 s instead of
//! running to its end. llama-cpp-2 does not expose the callback, so it is installed through
//! the raw context pointer, which the crate's `Debug` output prints: the crate is pinned to
//! an exact version, and if the pointer cannot be read the engine falls back to stopping at
//! step boundaries (its prompt chunks are sized for that anyway).

use super::Event;
use llama_cpp_2::context::LlamaContext;
use std::ffi::c_void;
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;

/// The requests in the batch being decoded; read by ggml's worker threads.
#[derive(Default)]
pub(super) struct AbortState {
    in_batch: Mutex<Vec<UnboundedSender<Event>>>,
}

impl AbortState {
    /// Sets the requests of the next decode call.
    pub fn set(&self, senders: Vec<UnboundedSender<Event>>) {
        *self.in_batch.lock().unwrap_or_else(|p| p.into_inner()) = senders;
    }

    fn all_abandoned(&self) -> bool {
        // Never block a compute thread: if the engine is updating the list, keep going.
        match self.in_batch.try_lock() {
            Ok(v) => !v.is_empty() && v.iter().all(|s| s.is_closed()),
            Err(_) => false,
        }
    }
}

unsafe extern "C" fn should_abort(data: *mut c_void) -> bool {
    // SAFETY: `data` is the `AbortState` registered in `install`, which the engine keeps
    // alive (in an `Arc`) for as long as the context exists.
    let state = unsafe { &*(data as *const AbortState) };
    state.all_abandoned()
}

/// The raw `llama_context` pointer, from the crate's `Debug` output
/// (`LlamaContext { context: 0x55d1c0a0b2c0 }`).
fn raw_pointer(ctx: &LlamaContext<'_>) -> Option<*mut llama_cpp_sys_2::llama_context> {
    let dbg = format!("{ctx:?}");
    let hex = dbg.split("0x").nth(1)?;
    let hex: String = hex.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    let addr = usize::from_str_radix(&hex, 16).ok().filter(|a| *a != 0)?;
    Some(addr as *mut llama_cpp_sys_2::llama_context)
}

/// Registers `state` as `ctx`'s abort callback. Returns false (and changes nothing) when the
/// context pointer cannot be read.
pub(super) fn install(ctx: &LlamaContext<'_>, state: &std::sync::Arc<AbortState>) -> bool {
    let Some(ptr) = raw_pointer(ctx) else { return false };
    let data = std::sync::Arc::as_ptr(state) as *mut c_void;
    // SAFETY: `ptr` is the live context `ctx` wraps (read from its own Debug output, which
    // prints that pointer); the callback only reads `data`, an `AbortState` the caller keeps
    // alive longer than the context.
    unsafe { llama_cpp_sys_2::llama_set_abort_callback(ptr, Some(should_abort), data) };
    true
}
