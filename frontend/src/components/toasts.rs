//! Transient messages in a corner: every server error that is not shown next to a form
//! ends up here, so nothing fails silently.

use std::time::Duration;

use leptos::prelude::*;

/// How a toast looks and how long it stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToastKind {
    Error,
    Info,
}

#[derive(Clone, Debug, PartialEq)]
struct Toast {
    id: u64,
    kind: ToastKind,
    text: String,
}

/// The toast queue, shared through context.
#[derive(Clone, Copy)]
pub struct Toasts {
    items: RwSignal<Vec<Toast>>,
    next: StoredValue<u64>,
}

/// At most this many toasts are on screen; older ones make room.
const MAX_VISIBLE: usize = 4;

impl Default for Toasts {
    fn default() -> Self {
        Self::new()
    }
}

impl Toasts {
    pub fn new() -> Self {
        Self { items: RwSignal::new(Vec::new()), next: StoredValue::new(1) }
    }

    /// Shows an error for 8 s.
    pub fn error(&self, text: impl Into<String>) {
        self.push(ToastKind::Error, text.into(), Duration::from_secs(8));
    }

    /// Shows a notice for 5 s.
    pub fn info(&self, text: impl Into<String>) {
        self.push(ToastKind::Info, text.into(), Duration::from_secs(5));
    }

    fn push(&self, kind: ToastKind, text: String, ttl: Duration) {
        let id = self.next.get_value();
        self.next.set_value(id + 1);
        self.items.update(|items| {
            // The same error repeated (e.g. rate limiting) replaces itself instead of stacking.
            items.retain(|t| !(t.kind == kind && t.text == text));
            items.push(Toast { id, kind, text });
            let excess = items.len().saturating_sub(MAX_VISIBLE);
            items.drain(..excess);
        });
        let this = *self;
        set_timeout(move || this.dismiss(id), ttl);
    }

    fn dismiss(&self, id: u64) {
        self.items.update(|items| items.retain(|t| t.id != id));
    }
}

/// Renders the queue. Errors are announced assertively, notices politely.
#[component]
pub fn ToastHost() -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    view! {
        <div class="toasts" aria-live="polite">
            <For each=move || toasts.items.get() key=|t| t.id let:toast>
                {
                    let (class, testid, role) = match toast.kind {
                        ToastKind::Error => ("toast toast-error", "toast-error", "alert"),
                        ToastKind::Info => ("toast toast-info", "toast-info", "status"),
                    };
                    let id = toast.id;
                    view! {
                        <div class=class data-testid=testid role=role>
                            <span class="toast-text">{toast.text}</span>
                            <button
                                class="toast-close"
                                aria-label="Dismiss"
                                on:click=move |_| toasts.dismiss(id)
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            </For>
        </div>
    }
}
