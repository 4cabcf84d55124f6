//! Environment teardown. A worker thread that terminates or exits, and the process exiting,
//! tear their JS environment down; the runtime and its tasks live on (other environments may
//! use them). Every server and client is force-stopped with the environment that created it,
//! so its UDP socket is released and no task later tries to call into a JS world that is gone.

use std::future::Future;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use napi::{Env, Result};

/// Longest the JS thread waits in its teardown for one forced stop: long enough to flush the
/// CONNECTION_CLOSE frames and see the socket released (the stop itself bounds both).
const TEARDOWN_WAIT: Duration = Duration::from_secs(3);

/// At process exit only the CONNECTION_CLOSE frames matter (the OS releases the socket); they
/// leave on the endpoint driver's next poll.
pub const EXIT_WAIT: Duration = Duration::from_millis(100);

/// Runs `stop(target)` when `env` is torn down, unless `target` was dropped first. The hook
/// holds only a weak reference, so a stopped and collected server costs the hook list one small
/// entry, not the server.
pub fn stop_on_teardown<T, F, Fut>(env: &Env, target: &Arc<T>, stop: F) -> Result<()>
where
    T: Send + Sync + 'static,
    F: FnOnce(Arc<T>) -> Fut + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    env.add_env_cleanup_hook(Arc::downgrade(target), move |weak| {
        if let Some(target) = weak.upgrade() {
            run_blocking(stop(target), TEARDOWN_WAIT);
        }
    })?;
    Ok(())
}

/// Drives `fut` on the shared runtime and waits on this thread, at most `wait`. The JS thread is
/// the caller and nothing in `fut` waits on it: calls into JS from a stop only enqueue, and the
/// environment drops them.
pub fn run_blocking(fut: impl Future<Output = ()> + Send + 'static, wait: Duration) {
    let (done, finished) = mpsc::channel();
    let spawned = napi::bindgen_prelude::within_runtime_if_available(|| {
        tokio::runtime::Handle::try_current().map(|rt| {
            rt.spawn(async move {
                fut.await;
                let _ = done.send(());
            })
        })
    });
    if spawned.is_ok() {
        let _ = finished.recv_timeout(wait);
    }
}
