//! Environment teardown. A worker thread that terminates or exits, and the process exiting,
//! tear their JS environment down; the runtime and its tasks live on (other environments may
//! use them). Every server and client is force-stopped with the environment that created it,
//! so its UDP socket is released and no task later tries to call into a JS world that is gone.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Weak};
use std::time::Duration;

use futures_util::future::join_all;
use napi::{Env, Result};

use super::wake::runtime;

/// Longest the JS thread waits in its teardown for the forced stops (run together): long enough
/// to flush the CONNECTION_CLOSE frames and see the sockets released (each stop bounds both).
const TEARDOWN_WAIT: Duration = Duration::from_secs(3);

/// At process exit only the CONNECTION_CLOSE frames matter (the OS releases the socket); they
/// leave on the endpoint driver's next poll.
pub const EXIT_WAIT: Duration = Duration::from_millis(100);

type StopFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server or client, held weakly, and how to stop it.
trait Entry {
    fn alive(&self) -> bool;
    fn stop(self: Box<Self>) -> Option<StopFuture>;
}

struct WeakEntry<T, F> {
    target: Weak<T>,
    stop: F,
}

impl<T, F, Fut> Entry for WeakEntry<T, F>
where
    F: FnOnce(Arc<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn alive(&self) -> bool {
        self.target.strong_count() > 0
    }

    fn stop(self: Box<Self>) -> Option<StopFuture> {
        let target = self.target.upgrade()?;
        Some(Box::pin((self.stop)(target)))
    }
}

thread_local! {
    /// What the JS environment of this thread created (Node and Bun run one environment per
    /// thread: the main one or a worker's). `None` until the first registration adds the
    /// environment's one cleanup hook; the hook takes the list.
    static LIVE: RefCell<Option<Vec<Box<dyn Entry>>>> = const { RefCell::new(None) };
}

/// Runs `stop(target)` when `env` is torn down, unless `target` was dropped first. Entries are
/// weak and the dead ones are pruned at each registration, so creating and dropping clients
/// does not grow the list.
pub fn stop_on_teardown<T, F, Fut>(env: &Env, target: &Arc<T>, stop: F) -> Result<()>
where
    T: Send + Sync + 'static,
    F: FnOnce(Arc<T>) -> Fut + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let entry: Box<dyn Entry> = Box::new(WeakEntry {
        target: Arc::downgrade(target),
        stop,
    });
    LIVE.with(|live| {
        let mut live = live.borrow_mut();
        if let Some(list) = live.as_mut() {
            list.retain(|e| e.alive());
            list.push(entry);
            return Ok(());
        }
        env.add_env_cleanup_hook((), |()| stop_all())?;
        *live = Some(vec![entry]);
        Ok(())
    })
}

/// The environment is going: stop everything it created, together, bounded.
fn stop_all() {
    let entries = LIVE
        .with(|live| live.borrow_mut().take())
        .unwrap_or_default();
    let stops: Vec<StopFuture> = entries.into_iter().filter_map(Entry::stop).collect();
    if !stops.is_empty() {
        run_blocking(
            async move {
                join_all(stops).await;
            },
            TEARDOWN_WAIT,
        );
    }
}

/// Drives `fut` on the shared runtime and waits on this thread, at most `wait`. The JS thread is
/// the caller and nothing in `fut` waits on it: calls into JS from a stop only enqueue, and the
/// environment drops them.
pub fn run_blocking(fut: impl Future<Output = ()> + Send + 'static, wait: Duration) {
    let (done, finished) = mpsc::channel();
    if let Some(rt) = runtime() {
        rt.spawn(async move {
            fut.await;
            let _ = done.send(());
        });
        let _ = finished.recv_timeout(wait);
    }
}
