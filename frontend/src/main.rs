//! Mounts the app; everything else lives in the library.
//!
//! Mounting is the longest piece of work of a page load, and a phone spends a few hundred
//! milliseconds on it during which the page cannot answer a tap. So the start is cut into
//! browser tasks: [`boot::Executor`] runs the first step of each future that the mount
//! spawns (the router's page, the socket, the effects) in a task of its own instead of in
//! the mount's task, and tells index.html when all of them have had it, so that the static
//! shell is removed only once the page under it is complete.

fn main() {
    console_error_panic_hook::set_once();
    boot::Executor::install();
    leptos::mount::mount_to_body(confab_frontend::App);
    boot::mounted();
}

mod boot {
    use std::cell::Cell;
    use std::pin::pin;
    use std::task::Poll;

    use any_spawner::{CustomExecutor, PinnedFuture, PinnedLocalFuture};
    use gloo_timers::future::TimeoutFuture;

    /// What index.html waits for before it removes the shell.
    const READY_EVENT: &str = "confab-ready";

    thread_local! {
        /// Whether `main` is still mounting: what is spawned meanwhile starts in a later task.
        static MOUNTING: Cell<bool> = const { Cell::new(true) };
        /// Futures spawned during the mount that have not been polled yet.
        static WAITING: Cell<usize> = const { Cell::new(0) };
    }

    /// wasm-bindgen-futures, except that a future spawned while `main` mounts gets its first
    /// poll in a task of its own (a zero timeout: each is its own task, in spawn order). After
    /// the mount everything is spawned as usual, so nothing changes once the app runs.
    pub struct Executor;

    impl Executor {
        /// Must run before the mount, which would install plain wasm-bindgen-futures.
        pub fn install() {
            if any_spawner::Executor::init_custom_executor(Self).is_err() {
                leptos::logging::warn!("boot: an executor was already installed");
            }
        }
    }

    impl CustomExecutor for Executor {
        fn spawn(&self, fut: PinnedFuture<()>) {
            self.spawn_local(fut);
        }

        fn spawn_local(&self, fut: PinnedLocalFuture<()>) {
            if !MOUNTING.get() {
                wasm_bindgen_futures::spawn_local(fut);
                return;
            }
            WAITING.set(WAITING.get() + 1);
            wasm_bindgen_futures::spawn_local(async move {
                TimeoutFuture::new(0).await;
                let mut fut = pin!(fut);
                let first = futures::poll!(fut.as_mut());
                WAITING.set(WAITING.get() - 1);
                ready_if_done();
                if first == Poll::Pending {
                    fut.await;
                }
            });
        }

        fn poll_local(&self) {}
    }

    /// `main` has mounted the app: from now on futures start as usual.
    pub fn mounted() {
        MOUNTING.set(false);
        ready_if_done();
    }

    fn ready_if_done() {
        if MOUNTING.get() || WAITING.get() > 0 {
            return;
        }
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        if let Ok(event) = web_sys::Event::new(READY_EVENT) {
            let _ = document.dispatch_event(&event);
        }
    }
}
