//! Scoring many opportunities on every core: a list is cut into one contiguous run per thread,
//! each run is handled on a blocking thread, and the results come back in the list's order.
//! Used by `POST /v1/score` batches and by the scores a webhook group answers with.

/// Runs `work(first, run)` on up to `threads` blocking threads, one contiguous run of `items`
/// each (`first` is the run's position in `items`), and returns the runs' results in order.
/// An error only means a thread panicked.
pub async fn in_runs<T, R>(
    items: Vec<T>,
    threads: usize,
    work: impl Fn(usize, Vec<T>) -> R + Send + Sync + 'static,
) -> Result<Vec<R>, tokio::task::JoinError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let per_thread = items.len().div_ceil(threads.max(1)).max(1);
    let work = std::sync::Arc::new(work);
    let mut rest = items.into_iter();
    let mut handles = Vec::new();
    for first in (0..rest.len()).step_by(per_thread) {
        let run: Vec<T> = rest.by_ref().take(per_thread).collect();
        let work = work.clone();
        handles.push(tokio::task::spawn_blocking(move || work(first, run)));
    }
    futures_util::future::join_all(handles)
        .await
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_cover_the_list_in_order() {
        for (len, threads) in [(0, 2), (1, 2), (10, 1), (10, 3), (11, 2), (3, 8)] {
            let items: Vec<usize> = (0..len).collect();
            let runs = in_runs(items, threads, |first, run| (first, run))
                .await
                .expect("runs");
            assert!(runs.len() <= threads.max(1), "{len} items, {threads} threads");
            let mut next = 0;
            for (first, run) in runs {
                assert_eq!(first, next);
                assert!(run.iter().copied().eq(first..first + run.len()));
                next += run.len();
            }
            assert_eq!(next, len);
        }
    }
}
