//! The OpenAPI document (`/openapi.json`) and Swagger UI (`/docs`), served from the binary.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    customers, drift, health, imports, insights, jobs, models, opportunities, scores, training_runs, webhooks,
};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "dealscore", description = "Opportunity scoring for Sales Ops. Every error is RFC 9457 problem+json."),
    paths(
        health::healthz, health::readyz, health::metrics,
        opportunities::put, opportunities::get, opportunities::delete, opportunities::list,
        opportunities::add_activities, opportunities::list_activities,
        imports::create,
        scores::score_stateless, scores::score_stored, scores::rescore, scores::priority, jobs::get,
        webhooks::receive, webhooks::list_events, webhooks::list_outbox, webhooks::retry,
        drift::get,
        training_runs::start, training_runs::get, training_runs::list,
        models::list, models::get, models::active, models::activate, models::compare,
        insights::get_pipeline, insights::get_success_factors, insights::get_at_risk, insights::get_resources,
        insights::get_accounts, insights::get_breakdown, insights::competitors::get_competitors, insights::get_objectives, insights::put_objectives,
        customers::get_customers, customers::put_costs,
    ),
    components(schemas(crate::error::Problem, crate::domain::FieldError, crate::ingest::ImportSummary, crate::scoring::RankBy)),
    modifiers(&BearerAuth),
    tags(
        (name = "opportunities", description = "CRM opportunities and activities"),
        (name = "imports", description = "CSV import"),
        (name = "scoring", description = "scores, explanations, next interventions, priority list"),
        (name = "webhooks", description = "signed CRM events in, score write-backs out (docs/webhooks.md)"),
        (name = "insights", description = "Sales Ops KPIs and objectives, JSON or CSV (docs/insights.md)"),
        (name = "operations", description = "health, readiness, metrics"),
        (name = "models", description = "training runs, model versions, promotion gate, activation and rollback (docs/operations.md), drift (docs/drift.md)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
