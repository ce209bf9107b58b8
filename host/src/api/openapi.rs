//! The OpenAPI document served at `/openapi.json`, generated from the handlers'
//! annotations so that it cannot drift from the code.

use super::{
    conversations, customers, error, events, keys, messages, replay, routing, shadow, team, webchat, webhooks,
};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Seam API", description = "Omnichannel customers, conversations and events. Every `/v1` route except channel webhooks needs `Authorization: Bearer <api key>`; errors are `{\"error\": {\"code\", \"message\"}}`."),
    paths(
        webhooks::webhook, webchat::stream, webchat::history::history,
        customers::get_customer, customers::find_customers, customers::timeline,
        customers::patch_customer, customers::merge, customers::unmerge,
        conversations::get_conversation, conversations::update, conversations::list, conversations::messages,
        messages::send_message, messages::reply, messages::get_message, messages::dead_letters,
        messages::redrive,
        events::list, events::stream,
        keys::create, keys::list, keys::revoke, keys::me,
        team::list_agents, team::get_agent, team::create_agent, team::patch_agent, team::set_status,
        team::list_queues, team::get_queue, team::create_queue, team::patch_queue, team::waiting,
        routing::get_policy, routing::put_policy, routing::rollback,
        replay::replay, shadow::get_shadow, shadow::put_shadow, shadow::stop_shadow,
    ),
    components(schemas(
        error::ErrorBody,
        crate::pipeline::effects::Effect,
        crate::pipeline::effects::Decision,
        crate::pipeline::logged::DecisionGroup,
    )),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("seam_<id>_<secret>").build(),
            ),
        );
    }
}
