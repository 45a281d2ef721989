//! The admin API group: teams, members, invitations, API keys and settings.

mod invitations;
mod keys;
mod members;
mod settings;
mod teams;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(teams::list_teams, teams::create_team))
        .routes(routes!(teams::get_team, teams::update_team))
        .routes(routes!(members::list_members))
        .routes(routes!(members::change_role, members::remove_member))
        .routes(routes!(invitations::list_invitations, invitations::invite))
        .routes(routes!(invitations::revoke_invitation))
        .routes(routes!(invitations::accept_invitation))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(settings::list_settings))
        .routes(routes!(settings::get_setting, settings::put_setting, settings::delete_setting))
}
