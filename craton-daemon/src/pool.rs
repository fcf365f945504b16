//! The engine threads that run the short cryptographic calls (sign, verify, encrypt, decrypt,
//! digest on requests bounded by `max_request_bytes`): one per core, fed from one queue.
//!
//! tokio's blocking pool starts a thread per concurrent call and wakes one for every call
//! (64 clients: 64 threads, a futex wake-up and a context switch per signature). Here a
//! worker that finishes a call takes the next one from the queue without sleeping, so under
//! load calls run back to back and only an idle worker is woken. Calls that may take long
//! (key generation, PBKDF2 logins, anything that syncs the store) stay on the blocking pool,
//! so they cannot hold up these threads.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Workers waiting on `ready`.
    idle: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

/// The pool. Dropping it lets the workers finish what is queued and stop.
pub struct EnginePool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EnginePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnginePool").finish_non_exhaustive()
    }
}

impl EnginePool {
    /// A pool of `threads` workers (at least one).
    pub fn new(threads: usize) -> std::io::Result<EnginePool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        });
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("craton-engine-{i}"))
                .spawn(move || work(&shared))?;
        }
        Ok(EnginePool { shared })
    }

    /// One worker per core of this machine.
    pub fn per_core() -> std::io::Result<EnginePool> {
        EnginePool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `f` on a worker; the future resolves to its result, or to `None` if the pool
    /// stopped first or `f` panicked (the worker survives a panic).
    pub fn run<T, F>(&self, f: F) -> impl std::future::Future<Output = Option<T>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if let Ok(v) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = tx.send(v);
            }
        });
        let queued = match self.shared.state.lock() {
            Ok(mut s) if !s.closed => {
                s.jobs.push_back(job);
                if s.idle > 0 {
                    self.shared.ready.notify_one();
                }
                true
            }
            _ => false,
        };
        async move {
            if !queued {
                return None;
            }
            rx.await.ok()
        }
    }
}

impl Drop for EnginePool {
    fn drop(&mut self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.closed = true;
        }
        self.shared.ready.notify_all();
    }
}

fn work(shared: &Shared) {
    let Ok(mut state) = shared.state.lock() else {
        return;
    };
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            job();
            state = match shared.state.lock() {
                Ok(s) => s,
                Err(_) => return,
            };
            continue;
        }
        if state.closed {
            return;
        }
        state.idle += 1;
        state = match shared.ready.wait(state) {
            Ok(s) => s,
            Err(_) => return,
        };
        state.idle -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_calls_from_many_tasks_each_get_their_own_result() {
        let pool = Arc::new(EnginePool::new(2).unwrap());
        let tasks: Vec<_> = (0..64u64)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for j in 0..50u64 {
                        assert_eq!(pool.run(move || i * 1000 + j).await, Some(i * 1000 + j));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_panicking_call_answers_none_and_the_worker_carries_on() {
        let pool = EnginePool::new(1).unwrap();
        let panicked = pool
            .run(|| -> u8 { panic!("a panic the pool must contain") })
            .await;
        assert_eq!(panicked, None);
        assert_eq!(pool.run(|| 7).await, Some(7));
    }

    #[tokio::test]
    async fn after_the_pool_is_dropped_queued_calls_still_finish() {
        let pool = EnginePool::new(1).unwrap();
        let slow = pool.run(|| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            1
        });
        let queued = pool.run(|| 2);
        drop(pool);
        assert_eq!(slow.await, Some(1));
        assert_eq!(queued.await, Some(2));
    }
}
