//! Queries use `query_typed`: one round trip with an unnamed statement, so nothing is left
//! prepared on a connection that RDS Proxy may hand to someone else, and nothing pins it.

/// `params![value => TYPE, ...]` builds the typed parameter list for `query_typed`.
macro_rules! params {
    ($($v:expr => $t:ident),* $(,)?) => {
        &[$((&$v as &(dyn tokio_postgres::types::ToSql + Sync), tokio_postgres::types::Type::$t)),*]
    };
}
