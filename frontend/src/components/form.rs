//! Pieces every form uses: the form-wide error, a labelled field with its hint and error,
//! a group of checkboxes.
//!
//! Errors are live regions (`role="alert"`) so screen readers announce them, and a field's
//! error is tied to its input with `aria-describedby` by the caller using [`error_id`].

use leptos::prelude::*;

/// The id of the error element of the field `field_id`, for `aria-describedby`.
pub fn error_id(field_id: &str) -> String {
    format!("{field_id}-error")
}

/// The error of the whole form, under its fields; nothing while there is none.
#[component]
pub fn FormError(error: RwSignal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <p class="form-error" role="alert" data-testid="form-error">
                    {e}
                </p>
            }
        })
    }
}

/// The error of one field, right under it.
#[component]
pub fn FieldError(
    /// The id of the field's input (or fieldset) the error belongs to.
    field_id: &'static str,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <small id=error_id(field_id) class="field-error" role="alert" data-testid="field-error">
                    {e}
                </small>
            }
        })
    }
}

/// A labelled input with its hint and its error, wired up for screen readers.
#[component]
pub fn Field(
    id: &'static str,
    label: &'static str,
    hint: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    value: RwSignal<String>,
    error: RwSignal<Option<String>>,
    /// Shown in the empty box.
    #[prop(optional)]
    placeholder: &'static str,
    /// Whether the field may stay empty (it is `required` otherwise).
    #[prop(optional)]
    optional: bool,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let described_by = {
        let hint_id = hint_id.clone();
        move || {
            let mut ids = Vec::new();
            if !hint.is_empty() {
                ids.push(hint_id.clone());
            }
            if error.with(Option::is_some) {
                ids.push(error_id(id));
            }
            ids.join(" ")
        }
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type=kind
                autocomplete=autocomplete
                autocapitalize="none"
                spellcheck="false"
                required=!optional
                placeholder=placeholder
                data-testid=id
                aria-invalid=move || error.with(Option::is_some).to_string()
                aria-describedby=described_by
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            {(!hint.is_empty()).then(|| view! { <small id=hint_id class="hint">{hint}</small> })}
            <FieldError field_id=id error />
        </div>
    }
}

/// A checkbox with its label, bound to `checked`.
#[component]
pub fn Toggle(testid: &'static str, label: &'static str, checked: RwSignal<bool>) -> impl IntoView {
    view! {
        <label class="check">
            <input
                type="checkbox"
                data-testid=testid
                prop:checked=move || checked.get()
                on:change=move |ev| checked.set(event_target_checked(&ev))
            />
            {label}
        </label>
    }
}

/// One choice of a [`CheckGroup`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice<T> {
    pub value: T,
    /// What the checkbox says, also its `data-value`.
    pub label: &'static str,
    /// A line explaining the choice.
    pub hint: &'static str,
}

/// A `<fieldset>` of checkboxes choosing any subset of `choices`, kept in `selected` in
/// the order of `choices`.
#[component]
pub fn CheckGroup<T>(
    /// The fieldset's id (its error's id derives from it).
    id: &'static str,
    legend: &'static str,
    #[prop(into)] choices: Signal<Vec<Choice<T>>>,
    selected: RwSignal<Vec<T>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView
where
    T: Copy + PartialEq + Send + Sync + 'static,
{
    let toggle = move |value: T, on: bool| {
        let order = choices.get_untracked();
        selected.update(|chosen| {
            chosen.retain(|v| *v != value);
            if on {
                chosen.push(value);
            }
            chosen.sort_by_key(|v| order.iter().position(|c| c.value == *v));
        });
    };
    view! {
        <fieldset
            id=id
            class="field check-group"
            data-testid=id
            aria-invalid=move || error.with(Option::is_some).to_string()
            aria-describedby=error_id(id)
        >
            <legend>{legend}</legend>
            <For
                each=move || choices.get()
                key=|choice| choice.label
                children=move |choice| {
                    let value = choice.value;
                    view! {
                        <label class="check">
                            <input
                                type="checkbox"
                                data-value=choice.label
                                prop:checked=move || selected.with(|s| s.contains(&value))
                                on:change=move |ev| toggle(value, event_target_checked(&ev))
                            />
                            <span>
                                <code>{choice.label}</code>
                                <span class="muted small">{format!(" {}", choice.hint)}</span>
                            </span>
                        </label>
                    }
                }
            />
            <FieldError field_id=id error />
        </fieldset>
    }
}
