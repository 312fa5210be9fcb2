//! A scrolling message log: it follows new messages while you are at the bottom, keeps
//! your place when earlier ones are paged in, and offers "load earlier".

use leptos::html;
use leptos::prelude::*;

/// Within this many pixels of the bottom counts as "at the bottom".
const STICKY_PX: i32 = 80;

#[component]
pub fn ScrollLog(
    /// The accessible name of the log.
    #[prop(into)]
    label: String,
    /// Changes whenever the rendered content does (count and newest id).
    #[prop(into)]
    revision: Signal<(usize, i64)>,
    #[prop(into)] can_load_earlier: Signal<bool>,
    #[prop(into)] loading_earlier: Signal<bool>,
    on_load_earlier: Callback<()>,
    children: Children,
) -> impl IntoView {
    let scroller = NodeRef::<html::Div>::new();
    let stick = StoredValue::new(true);
    // Scroll height and position before earlier messages were requested, to restore the view.
    let anchor = StoredValue::new(None::<(i32, i32)>);

    Effect::new(move |_| {
        revision.track();
        // Effects run after the DOM update; wait for layout before measuring.
        request_animation_frame(move || {
            // The log may have unmounted before the frame.
            let Some(el) = scroller.try_get_untracked().flatten() else { return };
            match anchor.try_get_value().flatten() {
                Some((height, top)) => {
                    anchor.set_value(None);
                    el.set_scroll_top(top + el.scroll_height() - height);
                }
                None if stick.try_get_value().unwrap_or(false) => el.set_scroll_top(el.scroll_height()),
                None => {}
            }
        });
    });

    let on_scroll = move |_| {
        if let Some(el) = scroller.get_untracked() {
            stick.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < STICKY_PX);
        }
    };
    let load_earlier = move |_| {
        if let Some(el) = scroller.get_untracked() {
            anchor.set_value(Some((el.scroll_height(), el.scroll_top())));
        }
        on_load_earlier.run(());
    };

    view! {
        <div
            class="log"
            node_ref=scroller
            on:scroll=on_scroll
            role="log"
            aria-label=label
            tabindex="0"
            data-testid="message-log"
        >
            <Show when=move || can_load_earlier.get()>
                <div class="load-earlier">
                    <button
                        class="secondary"
                        data-testid="load-earlier"
                        disabled=move || loading_earlier.get()
                        on:click=load_earlier
                    >
                        {move || {
                            if loading_earlier.get() { "Loading…" } else { "Load earlier messages" }
                        }}
                    </button>
                </div>
            </Show>
            {children()}
        </div>
    }
}
