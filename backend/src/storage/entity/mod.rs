//! sea-orm entities, one per table. Times are `i64` milliseconds since the Unix epoch so
//! SQLite and PostgreSQL store and compare them identically.

pub mod api_tokens;
pub mod direct_messages;
pub mod dm_reads;
pub mod external_identities;
pub mod jobs;
pub mod memberships;
pub mod mentions;
pub mod messages;
pub mod push_deliveries;
pub mod push_subscriptions;
pub mod reactions;
pub mod refresh_tokens;
pub mod rooms;
pub mod sessions;
pub mod users;
pub mod webhook_deliveries;
pub mod webhooks;
