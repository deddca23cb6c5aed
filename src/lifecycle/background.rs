//! CPU-heavy lifecycle work (training, gate evaluation) on a dedicated thread at the lowest
//! scheduling priority, so the HTTP workers keep the CPU they need on a small machine.

/// Runs `work` on a new thread named `name` whose priority is lowered first (niceness 19 on
/// Linux; a failure to lower it is logged and the work still runs), and awaits its result.
///
/// A dedicated thread rather than `spawn_blocking`: a lowered priority would otherwise stay with
/// a pooled blocking thread and slow later, unrelated blocking work.
pub async fn run_low_priority<T, F>(name: &str, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (send, receive) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            lower_current_thread_priority();
            // The receiver may be gone (caller cancelled); the result is then simply dropped.
            let _ = send.send(work());
        })
        .map_err(|e| format!("cannot start the {name} thread: {e}"))?;
    receive
        .await
        .map_err(|_| format!("the {name} thread stopped without a result (panic)"))
}

/// Runs CPU work off the async threads: at the lowest priority when `low_priority` (see
/// [`run_low_priority`]), else on a blocking thread at the process's own priority.
pub async fn run_cpu<T, F>(name: &str, low_priority: bool, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if low_priority {
        run_low_priority(name, work).await
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| format!("the {name} work stopped without a result: {e}"))
    }
}

/// Lowers the calling thread's scheduling priority to the minimum.
pub fn lower_current_thread_priority() {
    use thread_priority::{set_current_thread_priority, ThreadPriority};
    if let Err(e) = set_current_thread_priority(ThreadPriority::Min) {
        tracing::warn!(error = ?e, "cannot lower the training thread's priority; training runs at normal priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_thread_with_a_lowered_priority() {
        let nice = run_low_priority("test-low", || {
            // Field 19 of /proc/thread-self/stat is the niceness (Linux only).
            std::fs::read_to_string("/proc/thread-self/stat")
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.to_owned();
                    after.split_whitespace().nth(16)?.parse::<i32>().ok()
                })
        })
        .await
        .unwrap();
        if let Some(nice) = nice {
            assert!(nice > 0, "niceness {nice}");
        }
    }
}
