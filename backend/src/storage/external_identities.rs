//! Accounts of trusted issuers: the pair (issuer, subject) maps to one Confab account,
//! created on first use with no password (an empty hash never verifies, so it cannot log in
//! with one) and never remapped.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entity::{external_identities, users};
use super::{Db, StorageError, StorageResult, now_ms};

/// The account an external identity maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user_id: i64,
    pub username: String,
}

/// The account `(issuer, subject)` maps to, if it was seen before.
pub async fn find(db: &Db, issuer: &str, subject: &str) -> StorageResult<Option<Account>> {
    let Some(row) = external_identities::Entity::find()
        .filter(external_identities::Column::Issuer.eq(issuer))
        .filter(external_identities::Column::Subject.eq(subject))
        .one(&db.conn)
        .await?
    else {
        return Ok(None);
    };
    let user = users::Entity::find_by_id(row.user_id).one(&db.conn).await?;
    Ok(user.map(|u| Account { user_id: u.id, username: u.username }))
}

/// The account of `(issuer, subject)`, created on first use under the first of `names` that
/// is free (the caller makes the list deterministic and its last entries unique enough).
/// Two first uses racing are settled by the unique `(issuer, subject)` index: the loser's
/// fresh account is removed and the winner's returned.
pub async fn find_or_create(db: &Db, issuer: &str, subject: &str, names: &[String], is_admin: bool) -> StorageResult<Account> {
    if let Some(found) = find(db, issuer, subject).await? {
        return Ok(found);
    }
    let mut created = None;
    for name in names {
        let row = users::ActiveModel {
            username: Set(name.clone()),
            username_key: Set(name.to_ascii_lowercase()),
            password_hash: Set(String::new()),
            is_admin: Set(is_admin),
            created_at: Set(now_ms()),
            ..Default::default()
        };
        match row.insert(&db.conn).await.map_err(StorageError::from) {
            Ok(user) => {
                created = Some(user);
                break;
            }
            Err(StorageError::Duplicate) => continue,
            Err(other) => return Err(other),
        }
    }
    let Some(user) = created else { return Err(StorageError::Duplicate) };
    let mapping = external_identities::ActiveModel {
        issuer: Set(issuer.to_owned()),
        subject: Set(subject.to_owned()),
        user_id: Set(user.id),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    match mapping.insert(&db.conn).await.map_err(StorageError::from) {
        Ok(_) => Ok(Account { user_id: user.id, username: user.username }),
        Err(StorageError::Duplicate) => {
            users::Entity::delete_by_id(user.id).exec(&db.conn).await?;
            find(db, issuer, subject).await?.ok_or(StorageError::Duplicate)
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_identity_maps_to_one_account_and_a_taken_name_falls_to_the_next_candidate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display())).await.expect("connect");
        db.migrate().await.expect("migrate");
        super::super::users::create(&db, "ann", "hash", false).await.expect("ann");
        let names = ["ann".to_owned(), "ann-1234".to_owned()];
        let first = find_or_create(&db, "django", "7", &names, false).await.expect("created");
        assert_eq!(first.username, "ann-1234");
        let again = find_or_create(&db, "django", "7", &["someone-else".to_owned()], false).await.expect("found");
        assert_eq!(again, first, "the mapping never changes");
        let other = find_or_create(&db, "sso", "7", &["bob".to_owned()], false).await.expect("another issuer");
        assert_ne!(other.user_id, first.user_id);
    }
}
