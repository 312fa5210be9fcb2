//! Reusable pieces of the UI.
//!
//! - [`shell`]: the header with navigation, unread badge, user menu.
//! - [`sidebar`]: joined rooms and conversations beside every page (a drawer on phones);
//!   [`switcher`]: Ctrl+K to jump to any of them.
//! - [`connection`]: the connected / reconnecting / offline badge.
//! - [`toasts`]: transient error and info messages.
//! - [`presence`]: the Online/Offline badge.
//! - [`scroll_log`]: a scrolling log that sticks to the bottom and pages back on demand.
//! - [`message`]: one room message with edit, delete and reactions; pending sends.
//! - [`composer`]: the message box (Enter sends, Shift+Enter breaks the line).
//! - [`conversation`]: what a room and a private conversation share: log, unsent messages, composer.
//! - [`typing`]: "… is typing".
//! - [`export`]: "Export history" with live progress and the download.
//! - [`moderation`]: the keyboard-usable action menu and the reason/duration dialog;
//!   [`room_settings`]: a room's slow mode, retention, moderators, bans and mutes;
//!   [`paged`]: a list paged with the server's cursor.
//! - [`form`]: form and field errors, checkbox groups; [`confirm`]: ask-again buttons;
//!   [`secret`]: a secret shown once, with a copy button.

pub mod composer;
pub mod confirm;
pub mod connection;
pub mod conversation;
pub mod export;
pub mod form;
pub mod message;
pub mod moderation;
pub mod paged;
pub mod presence;
pub mod room_settings;
pub mod scroll_log;
pub mod secret;
pub mod shell;
pub mod sidebar;
pub mod switcher;
pub mod toasts;
pub mod typing;
