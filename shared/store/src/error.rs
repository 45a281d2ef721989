use tokio_postgres::error::SqlState;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or state conflict; the message is safe to show to the caller.
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("no database connection available: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl StoreError {
    /// Maps a unique violation on `constraint` to a conflict with `message`.
    pub fn unique(err: tokio_postgres::Error, constraint: &str, message: &str) -> Self {
        let hit = err
            .as_db_error()
            .is_some_and(|db| db.code() == &SqlState::UNIQUE_VIOLATION && db.constraint() == Some(constraint));
        if hit {
            StoreError::Conflict(message.to_owned())
        } else {
            StoreError::Db(err)
        }
    }

    /// True for errors worth retrying as a whole transaction (serialization, deadlock).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => {
                e.code()
                    .is_some_and(|c| c == &SqlState::T_R_SERIALIZATION_FAILURE || c == &SqlState::T_R_DEADLOCK_DETECTED)
                    || e.is_closed()
            }
            StoreError::Pool(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
