//! The hot path of room messages: appending a whole batch in one go.
//!
//! sea-orm builds every other query; this one is written against the drivers underneath,
//! because here the batch is the unit of work and the fixed cost of each statement, each
//! transaction and each hop to a driver thread is most of what a small batch costs.
//!
//! Both backends give the same contract: the rows of a batch commit together or not at all;
//! within a room their sequence numbers follow the batch order without gaps; a nonce its
//! author already used is not inserted again but reported as [`Appended::Repeat`] (found
//! by the unique index, not by a lookup per message); nothing is read back to build the
//! wire form, which the caller already has.
//!
//! # Layout
//! - [`sqlite`]: a thread owning one SQLite connection with cached prepared statements and
//!   the rooms' counters in memory (checked against the database on every commit).
//! - [`checkpoint`]: the SQLite log's checkpoints, off the writer's thread, and its rewinds.
//! - [`postgres`]: one statement per batch (`UNNEST` arrays): rooms locked in id order,
//!   counters moved, rows inserted, in a single round trip, so instances sharing the
//!   database stay correct.

mod checkpoint;
pub mod postgres;
pub mod sqlite;

use super::messages::NewMessage;
use super::{Db, StorageResult};

/// What became of one message of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored now with this id and per-room sequence number.
    New { id: i64, seq: i64 },
    /// Its author already stored a message with this nonce: nothing was written.
    Repeat,
}

/// One owner of the message writes, whichever database is underneath.
pub enum Appender {
    Sqlite(sqlite::SqliteWriter),
    Postgres(postgres::PgAppender),
}

impl Appender {
    /// The appender for `db` (opened on `url`, the URL `db` was connected with).
    pub fn open(db: &Db, url: &str) -> StorageResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(sqlite::SqliteWriter::start(url)?))
        } else {
            Ok(Self::Postgres(postgres::PgAppender::new(db)?))
        }
    }

    /// Writes a batch in one transaction; hands the batch back with the results, in order.
    pub async fn append(&self, batch: Vec<NewMessage>, now: i64) -> (Vec<NewMessage>, StorageResult<Vec<Appended>>) {
        match self {
            Self::Sqlite(writer) => writer.append(batch, now).await,
            Self::Postgres(pg) => {
                let outcome = pg.append(&batch, now).await;
                (batch, outcome)
            }
        }
    }
}

/// A batch's results from the `(index, id, seq)` of its stored rows: the others are repeats.
fn results_in_order(len: usize, stored: impl IntoIterator<Item = (usize, i64, i64)>) -> Vec<Appended> {
    let mut out = vec![Appended::Repeat; len];
    for (index, id, seq) in stored {
        if let Some(slot) = out.get_mut(index) {
            *slot = Appended::New { id, seq };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_missing_from_the_stored_rows_are_repeats() {
        let out = results_in_order(3, [(0, 10, 1), (2, 11, 2)]);
        assert_eq!(out, vec![Appended::New { id: 10, seq: 1 }, Appended::Repeat, Appended::New { id: 11, seq: 2 }]);
    }
}
