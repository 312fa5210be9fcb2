//! Finished export files, kept in the database in chunks so that any instance can serve a
//! download, whichever instance ran the job. A download reads one chunk at a time, so
//! memory holds one chunk whatever the file's size.

use sea_orm::ConnectionTrait;

use super::{Db, StorageResult, statement};

/// What a job row's `file` column holds when the file is in `export_chunks`. (Rows written
/// before this module hold a path relative to the data dir.)
pub const IN_DATABASE: &str = "db:export_chunks";

/// Bytes per stored chunk: large enough that a big export is a few hundred rows, small
/// enough that a download holds little in memory.
pub const CHUNK: usize = 256 * 1024;

/// Stores chunk `seq` (0, 1, …) of a job's file.
pub async fn append(db: &Db, job_id: i64, seq: i32, data: Vec<u8>) -> StorageResult<()> {
    db.conn
        .execute(statement(db, "INSERT INTO export_chunks (job_id, seq, data) VALUES (?, ?, ?)", vec![job_id.into(), seq.into(), data.into()]))
        .await?;
    Ok(())
}

/// Chunk `seq` of a job's file; `None` past the last one.
pub async fn chunk(db: &Db, job_id: i64, seq: i32) -> StorageResult<Option<Vec<u8>>> {
    let row = db
        .conn
        .query_one(statement(db, "SELECT data FROM export_chunks WHERE job_id = ? AND seq = ?", vec![job_id.into(), seq.into()]))
        .await?;
    Ok(row.map(|r| r.try_get::<Vec<u8>>("", "data")).transpose()?)
}

/// The file's length in bytes; `None` when it has no chunk (never written, or discarded).
pub async fn size(db: &Db, job_id: i64) -> StorageResult<Option<u64>> {
    let row = db
        .conn
        .query_one(statement(
            db,
            "SELECT COUNT(*) AS chunks, COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM export_chunks WHERE job_id = ?",
            vec![job_id.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let chunks: i64 = row.try_get("", "chunks")?;
    let bytes: i64 = row.try_get("", "bytes")?;
    Ok((chunks > 0).then_some(u64::try_from(bytes).unwrap_or(0)))
}

/// Deletes a job's chunks (an export that failed or will never be downloaded).
pub async fn discard(db: &Db, job_id: i64) -> StorageResult<()> {
    db.conn.execute(statement(db, "DELETE FROM export_chunks WHERE job_id = ?", vec![job_id.into()])).await?;
    Ok(())
}
