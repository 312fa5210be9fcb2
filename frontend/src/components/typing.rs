//! "alice is typing…" under a room's log.

use leptos::prelude::*;

use crate::state::room_state::RoomState;

#[component]
pub fn TypingIndicator(state: RoomState) -> impl IntoView {
    let typing = state.typing;
    let text = move || {
        typing.with(|t| match t.as_slice() {
            [] => String::new(),
            [(one, _)] => format!("{one} is typing…"),
            [(one, _), (two, _)] => format!("{one} and {two} are typing…"),
            _ => "Several people are typing…".to_owned(),
        })
    };
    // Always rendered (empty when nobody types) so the layout does not jump.
    view! {
        <div class="typing" data-testid="typing-indicator" aria-live="polite">
            {text}
        </div>
    }
}
