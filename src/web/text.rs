//! The web UI's words in English and French.
//!
//! One table, one row per key: `(key, English, French)`. Templates call `t.get("key")`; a unit
//! test reads every template and page source and fails on a key missing here, so a typo cannot
//! ship as a raw key on screen.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::i18n::Lang;

/// Text in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text(pub Lang);

impl Text {
    /// The text of `key`; the key itself (and a log line) when it is missing.
    pub fn get(&self, key: &str) -> &'static str {
        match table().get(key) {
            Some((en, fr)) => match self.0 {
                Lang::En => en,
                Lang::Fr => fr,
            },
            None => {
                tracing::warn!(key, "missing UI text");
                // Leaked once per distinct missing key; the catalogue test keeps this empty.
                Box::leak(key.to_string().into_boxed_str())
            }
        }
    }

    /// The language code (`en`, `fr`) for `<html lang>`.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// The separator between a label and its value (`: `, or ` : ` in French), for templates
    /// that write `label: value`.
    pub fn colon(&self) -> &'static str {
        crate::i18n::format::colon(self.0)
    }
}

fn table() -> &'static HashMap<&'static str, (&'static str, &'static str)> {
    static TABLE: OnceLock<HashMap<&'static str, (&'static str, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| CATALOGUE.iter().map(|(k, en, fr)| (*k, (*en, *fr))).collect())
}

/// Every UI text: key, English, French.
const CATALOGUE: &[(&str, &str, &str)] = &[
    // Navigation and session
    ("nav.skip", "Skip to content", "Aller au contenu"),
    ("nav.label", "Main", "Principale"),
    ("nav.deals", "My deals", "Mes affaires"),
    ("nav.pipeline", "Pipeline", "Pipeline"),
    ("nav.process", "Sales process", "Processus de vente"),
    ("nav.resources", "Resources", "Ressources"),
    ("nav.customers", "Customers", "Clients"),
    ("nav.competitors", "Competitors", "Concurrents"),
    ("nav.models", "Models", "Modèles"),
    ("nav.team", "Team", "Équipe"),
    ("nav.language", "Language", "Langue"),
    ("nav.sign_out", "Sign out", "Se déconnecter"),
    ("login.title", "Sign in", "Connexion"),
    (
        "login.intro",
        "Sign in with your dealscore API key.",
        "Connectez-vous avec votre clé d'API dealscore.",
    ),
    ("login.key", "API key", "Clé d'API"),
    ("login.submit", "Sign in", "Se connecter"),
    (
        "login.unknown",
        "This key is unknown or revoked.",
        "Cette clé est inconnue ou révoquée.",
    ),
    (
        "login.throttled",
        "Too many failed sign-ins from this address: try again in a minute.",
        "Trop d'échecs de connexion depuis cette adresse\u{202F}: réessayez dans une minute.",
    ),
    (
        "login.missing",
        "Enter your API key.",
        "Saisissez votre clé d'API.",
    ),
    (
        "login.expired",
        "The form expired; please sign in again.",
        "Le formulaire a expiré\u{202F}; reconnectez-vous.",
    ),
    // Errors
    ("error.back", "Back to my deals", "Retour à mes affaires"),
    (
        "error.forbidden",
        "Not available for your role",
        "Non disponible pour votre rôle",
    ),
    (
        "error.forbidden_detail",
        "This page needs the analyst role.",
        "Cette page demande le rôle analyste.",
    ),
    ("error.csrf", "Form expired", "Formulaire expiré"),
    (
        "error.csrf_detail",
        "Reload the page and try again.",
        "Rechargez la page et réessayez.",
    ),
    ("error.not_found", "Not found", "Introuvable"),
    ("error.bad_input", "Invalid request", "Requête invalide"),
    ("error.unavailable", "Not available yet", "Pas encore disponible"),
    (
        "error.internal",
        "Something went wrong",
        "Une erreur est survenue",
    ),
    (
        "error.internal_detail",
        "The error was logged; try again in a moment.",
        "L'erreur a été journalisée\u{202F}; réessayez dans un instant.",
    ),
    // Filters, pager, CSV
    ("filter.any", "Any", "Tous"),
    ("filter.apply", "Apply", "Appliquer"),
    ("filter.reset", "Reset", "Réinitialiser"),
    ("filter.from", "From", "Du"),
    ("filter.to", "To", "Au"),
    ("pager.label", "Pages", "Pages"),
    ("pager.prev", "Previous", "Précédente"),
    ("pager.next", "Next", "Suivante"),
    ("pager.page", "Page", "Page"),
    ("csv.download", "Download CSV", "Télécharger en CSV"),
    // Deals list
    ("deals.title", "My deals", "Mes affaires"),
    ("deals.filters", "Filters", "Filtres"),
    (
        "deals.caption",
        "Open deals by priority",
        "Affaires ouvertes par priorité",
    ),
    ("deals.count", "Open deals:", "Affaires ouvertes\u{202F}:"),
    (
        "dashboard.stale",
        "The data changed since these figures were computed; refresh in a moment for the new ones. Figures as of",
        "Les données ont changé depuis le calcul de ces chiffres\u{202F}; actualisez dans un instant. Chiffres du",
    ),
    (
        "deals.stale",
        "Deals changed since this list was scored; refresh in a few seconds for the new order. List as of",
        "Des affaires ont changé depuis le calcul de cette liste\u{202F}; actualisez dans quelques secondes pour le nouvel ordre. Liste du",
    ),
    (
        "deals.empty",
        "No open deal matches these filters.",
        "Aucune affaire ouverte ne correspond à ces filtres.",
    ),
    ("deals.owner", "Rep", "Commercial"),
    ("deals.region", "Region", "Région"),
    ("deals.sector", "Sector", "Secteur"),
    ("deals.grade", "Grade", "Note"),
    ("deals.focus", "Focus", "Priorité"),
    ("deals.sort", "Sort by", "Trier par"),
    ("deals.sort_value", "Expected value", "Valeur attendue"),
    ("deals.sort_score", "Score", "Score"),
    ("deals.sort_uplift", "Available uplift", "Gain possible"),
    ("deals.name", "Deal", "Affaire"),
    ("deals.account", "Account", "Compte"),
    ("deals.amount", "Amount", "Montant"),
    ("deals.score", "Score", "Score"),
    ("deals.trend", "Trend", "Tendance"),
    ("deals.next", "Next intervention", "Prochaine action"),
    ("deals.expected_value", "Expected value", "Valeur attendue"),
    ("deals.search", "Search", "Rechercher"),
    ("deals.search_hint", "Deal or account", "Affaire ou compte"),
    // Team
    ("team.title", "Team", "Équipe"),
    (
        "team.caption",
        "Open deals of each rep of the team",
        "Affaires ouvertes de chaque commercial de l'équipe",
    ),
    ("team.rep", "Rep", "Commercial"),
    ("team.open", "Open deals", "Affaires ouvertes"),
    ("team.expected_value", "Expected value", "Valeur attendue"),
    ("team.grades", "Grades A / B / C / D", "Notes A / B / C / D"),
    ("team.prioritize", "To prioritize", "À prioriser"),
    ("team.open_list", "Open the list of", "Ouvrir la liste de"),
    ("team.total", "Team", "Équipe"),
    (
        "team.empty",
        "No open deal in this team.",
        "Aucune affaire ouverte dans cette équipe.",
    ),
    ("trend.improving", "improving", "en hausse"),
    ("trend.steady", "steady", "stable"),
    ("trend.declining", "declining", "en baisse"),
    ("trend.new", "new", "nouveau"),
    ("focus.prioritize", "Prioritize", "Prioriser"),
    ("focus.secure", "Secure", "Sécuriser"),
    ("focus.nurture", "Nurture", "Entretenir"),
    ("focus.deprioritize", "Deprioritize", "Déprioriser"),
    // Deal page
    ("deal.none", "No deal", "Aucune affaire"),
    ("deal.score", "Score", "Score"),
    ("deal.probability", "Win probability", "Probabilité de gain"),
    ("deal.now", "now", "maintenant"),
    ("deal.history", "Score history", "Historique du score"),
    ("deal.moves", "What moved the score", "Ce qui a fait bouger le score"),
    ("deal.moved_fields", "changed", "modifié"),
    ("deal.moved_activities", "new activities", "nouvelles activités"),
    ("deal.moved_model", "new model", "nouveau modèle"),
    ("deal.moved_nothing", "rescored", "recalculé"),
    (
        "deal.factors",
        "What drives this score",
        "Ce qui explique ce score",
    ),
    ("deal.raises", "raises", "augmente"),
    ("deal.lowers", "lowers", "diminue"),
    ("deal.next", "Next intervention", "Prochaine action recommandée"),
    (
        "deal.no_lever",
        "No intervention would lift this deal's odds noticeably.",
        "Aucune action n'améliorerait nettement les chances de cette affaire.",
    ),
    ("deal.alternatives", "Alternatives", "Autres actions"),
    (
        "deal.measures",
        "This deal against won deals",
        "Cette affaire face aux affaires gagnées",
    ),
    ("deal.measure", "Measure", "Mesure"),
    ("deal.this_deal", "This deal", "Cette affaire"),
    ("deal.won_median", "Won (median)", "Gagnées (médiane)"),
    ("deal.lost_median", "Lost (median)", "Perdues (médiane)"),
    ("deal.activities", "Recent activities", "Activités récentes"),
    (
        "deal.no_activities",
        "No activity recorded.",
        "Aucune activité enregistrée.",
    ),
    ("deal.model", "Scored by model", "Noté par le modèle"),
    (
        "measure.cycle_days",
        "Deal age (days)",
        "Âge de l'affaire (jours)",
    ),
    ("measure.interactions", "Interactions", "Interactions"),
    (
        "measure.response_hours",
        "Response time (hours)",
        "Délai de réponse (heures)",
    ),
    ("activity.email", "Email", "E-mail"),
    ("activity.call", "Call", "Appel"),
    ("activity.meeting", "Meeting", "Réunion"),
    ("activity.demo", "Demo", "Démo"),
    ("activity.other", "Other", "Autre"),
    ("activity.inbound", "inbound", "entrant"),
    ("activity.outbound", "outbound", "sortant"),
    // Pipeline
    ("pipeline.title", "Pipeline", "Pipeline"),
    ("pipeline.kpis", "Key figures", "Indicateurs clés"),
    (
        "pipeline.vs_previous",
        "vs previous period",
        "vs période précédente",
    ),
    ("pipeline.trend", "Monthly trend", "Tendance mensuelle"),
    ("pipeline.by_region", "By region", "Par région"),
    ("pipeline.by_sector", "By sector", "Par secteur"),
    ("pipeline.by_owner", "By rep", "Par commercial"),
    ("pipeline.group", "Group", "Groupe"),
    (
        "pipeline.shares",
        "Open deals by focus and grade (latest scores)",
        "Affaires ouvertes par priorité et par note (derniers scores)",
    ),
    ("pipeline.focus", "Focus", "Priorité"),
    ("pipeline.deals", "Deals", "Affaires"),
    ("pipeline.share", "Share", "Part"),
    ("kpi.won_revenue", "Won revenue", "Chiffre d'affaires gagné"),
    ("kpi.open_pipeline", "Open pipeline", "Pipeline ouvert"),
    ("kpi.win_rate", "Win rate", "Taux de gain"),
    ("kpi.won_deals", "Won", "Gagnées"),
    ("kpi.lost_deals", "Lost", "Perdues"),
    ("kpi.open_deals", "Open", "Ouvertes"),
    // Sales process
    ("process.title", "Sales process", "Processus de vente"),
    (
        "process.intro",
        "What separates won deals from lost ones, from the closed deals in the database.",
        "Ce qui distingue les affaires gagnées des perdues, d'après les affaires clôturées en base.",
    ),
    ("process.compare_by", "Compare by", "Comparer par"),
    ("process.contact_role", "Contact role", "Rôle du contact"),
    ("process.closed", "Closed deals", "Affaires clôturées"),
    ("process.at_risk", "Deals at risk", "Affaires à risque"),
    (
        "process.at_risk_of",
        "open deals show a signal that, in closed deals, went with losing.",
        "affaires ouvertes montrent un signal qui, dans les affaires clôturées, allait avec la perte.",
    ),
    ("process.value_at_stake", "Value at stake", "Valeur en jeu"),
    ("process.signals", "Signals", "Signaux"),
    ("risk.response_hours", "Response time", "Délai de réponse"),
    ("risk.silence", "Without interaction", "Sans interaction"),
    ("risk.age", "Open for", "Ouverte depuis"),
    ("risk.days", "days", "jours"),
    ("risk.above", "above", "au-dessus de"),
    ("risk.closed_sector", "closed deals in", "affaires clôturées du secteur"),
    ("risk.closed_all", "closed deals", "affaires clôturées"),
    ("risk.above_it", "above it", "au-delà"),
    ("risk.won", "won", "gagnées"),
    ("risk.below", "below", "en deçà"),
    // Resources
    ("resources.title", "Resources", "Ressources"),
    ("resources.window", "Period:", "Période\u{202F}:"),
    ("resources.regions", "Regions", "Régions"),
    ("resources.reps", "Reps", "Commerciaux"),
    (
        "resources.reps_chart",
        "Open and won deals per rep, with win rate",
        "Affaires ouvertes et gagnées par commercial, avec taux de gain",
    ),
    ("resources.name", "Name", "Nom"),
    ("resources.forecast", "Forecast", "Prévision"),
    ("resources.overloaded", "overloaded", "surchargé"),
    (
        "resources.overloaded_help",
        "Open deals well above the median rep",
        "Affaires ouvertes bien au-dessus du commercial médian",
    ),
    ("resources.objectives", "Objectives", "Objectifs"),
    (
        "resources.no_objectives",
        "No objective set for this quarter (PUT /v1/objectives).",
        "Aucun objectif pour ce trimestre (PUT /v1/objectives).",
    ),
    ("resources.scope", "Scope", "Périmètre"),
    ("resources.metric", "Metric", "Indicateur"),
    ("resources.target", "Target", "Cible"),
    ("resources.actual", "Actual", "Réalisé"),
    ("resources.attainment", "Attainment", "Atteinte"),
    // Customers
    ("customers.title", "Customers", "Clients"),
    ("customers.figures", "Customer figures", "Indicateurs clients"),
    ("customers.acquisition_cost", "Average acquisition cost", "Coût d'acquisition moyen"),
    ("customers.customer_value", "Average customer value", "Valeur client moyenne"),
    ("customers.contract_length", "Average contract length", "Durée de contrat moyenne"),
    ("customers.churn_rate", "Churn rate", "Taux d'attrition"),
    ("customers.nrr", "Net revenue retention", "Rétention nette du revenu"),
    ("customers.new_customers", "new customers", "nouveaux clients"),
    ("customers.customers", "customers", "clients"),
    ("customers.months", "months", "mois"),
    ("customers.contracts_started", "contracts started", "contrats commencés"),
    ("customers.contracts_ending", "customers with a contract ending", "clients dont un contrat se termine"),
    ("customers.pending", "renewals still pending", "renouvellements encore en attente"),
    ("customers.by_region", "Acquisition by region", "Acquisition par région"),
    ("customers.region", "Region", "Région"),
    ("customers.spend", "Spend", "Dépenses"),
    (
        "customers.no_region_spend",
        "No acquisition spend recorded per region (PUT /v1/acquisition-costs).",
        "Aucune dépense d'acquisition par région (PUT /v1/acquisition-costs).",
    ),
    (
        "customers.why.no_spend",
        "no acquisition spend recorded",
        "aucune dépense d'acquisition enregistrée",
    ),
    ("customers.why.no_new_customers", "no new customer", "aucun nouveau client"),
    ("customers.why.no_customers", "no customer yet", "aucun client encore"),
    (
        "customers.why.contract_fields_unset",
        "no contract field configured",
        "aucun champ de contrat configuré",
    ),
    (
        "customers.why.deal_type_field_unset",
        "no deal type field configured",
        "aucun champ de type d'affaire configuré",
    ),
    ("customers.why.no_contracts_started", "no contract started", "aucun contrat commencé"),
    ("customers.why.no_contracts_ending", "no contract ended", "aucun contrat terminé"),
    ("customers.why.no_amounts", "no amounts", "aucun montant"),
    // Competitors
    ("competitors.title", "Competitors", "Concurrents"),
    ("competitors.win_rates", "Win rate against each competitor", "Taux de gain face à chaque concurrent"),
    (
        "competitors.chart",
        "Won and lost deals per competitor, with win rate",
        "Affaires gagnées et perdues par concurrent, avec taux de gain",
    ),
    ("competitors.overall", "All deals of the period", "Toutes les affaires de la période"),
    ("competitors.competitor", "Competitor", "Concurrent"),
    (
        "competitors.no_deals",
        "No deal was open at the end of this period or closed in it.",
        "Aucune affaire n'était ouverte à la fin de cette période ni conclue pendant celle-ci.",
    ),
    ("competitors.interval", "95% interval", "Intervalle à 95\u{202F}%"),
    ("competitors.trend", "Trend (4 periods)", "Tendance (4 périodes)"),
    ("competitors.lost_to", "Lost to it", "Perdues à son profit"),
    (
        "competitors.other_note",
        "(none): no competitor recorded. (other): competitors with fewer deals in the period than",
        "(none)\u{202F}: aucun concurrent renseigné. (other)\u{202F}: concurrents ayant moins d'affaires sur la période que",
    ),
    ("competitors.where", "Where we win and lose", "Où nous gagnons et perdons"),
    ("competitors.bands", "Deal size bands (amount)", "Tranches de taille (montant)"),
    ("competitors.by_sector", "Win rate by sector (closed deals)", "Taux de gain par secteur (affaires conclues)"),
    ("competitors.by_size", "Win rate by size (closed deals)", "Taux de gain par taille (affaires conclues)"),
    ("competitors.reasons", "Loss reasons", "Motifs de perte"),
    ("competitors.not_configured", "No competitor field configured", "Aucun champ concurrent configuré"),
    (
        "competitors.bad_field",
        "The configured competitor field is not a field:",
        "Le champ concurrent configuré n'est pas un champ\u{202F}:",
    ),
    (
        "competitors.how_to",
        "Name the field that holds a deal's main competitor (a core field or attr.<name>, which an import mapping can fill) in the [insights] table of the configuration file, or in DEALSCORE_INSIGHTS_COMPETITOR_FIELD, then restart:",
        "Indiquez le champ qui porte le principal concurrent d'une affaire (un champ standard ou attr.<nom>, qu'un mapping d'import peut remplir) dans la table [insights] du fichier de configuration, ou dans DEALSCORE_INSIGHTS_COMPETITOR_FIELD, puis redémarrez\u{202F}:",
    ),
    // Models
    ("models.title", "Models", "Modèles"),
    ("models.versions", "Versions", "Versions"),
    ("models.version", "Version", "Version"),
    ("models.status", "Status", "Statut"),
    ("models.created", "Created", "Créé le"),
    ("models.train_rows", "Training rows", "Lignes d'entraînement"),
    ("models.action", "Action", "Action"),
    ("models.compare", "Compare two versions", "Comparer deux versions"),
    ("models.compare_button", "Compare", "Comparer"),
    (
        "models.train",
        "Train a new version",
        "Entraîner une nouvelle version",
    ),
    (
        "models.force",
        "Activate even if the gate refuses",
        "Activer même si le contrôle refuse",
    ),
    ("models.start", "Start training", "Lancer l'entraînement"),
    ("models.run", "Training run", "Entraînement"),
    ("models.drift", "Drift", "Dérive"),
    ("models.drift_at", "Last check:", "Dernier contrôle\u{202F}:"),
    (
        "models.no_drift",
        "No drift check of the active version yet (GET /v1/models/active/drift measures now).",
        "Aucun contrôle de dérive de la version active pour l'instant (GET /v1/models/active/drift le mesure).",
    ),
    ("models.drift_of", "Version checked:", "Version contrôlée\u{202F}:"),
    ("drift.pop.open", "open deals", "affaires ouvertes"),
    (
        "drift.pop.closed_since",
        "closed since training",
        "clôturées depuis l'entraînement",
    ),
    ("metric.roc_auc", "ROC AUC", "AUC ROC"),
    ("metric.pr_auc", "PR AUC", "AUC PR"),
    ("metric.log_loss", "Log loss", "Perte logarithmique"),
    ("metric.brier", "Brier score", "Score de Brier"),
    ("metric.top_decile_lift", "Top-decile lift", "Lift du premier décile"),
    ("gate.title", "Promotion gate", "Contrôle de promotion"),
    (
        "gate.first_model",
        "First model: activated.",
        "Premier modèle\u{202F}: activé.",
    ),
    (
        "gate.activated",
        "Passed the gate: activated.",
        "Contrôle réussi\u{202F}: activé.",
    ),
    (
        "gate.held",
        "Held by the gate: it stays a candidate, the active version keeps serving.",
        "Retenu par le contrôle\u{202F}: il reste candidat, la version active continue de servir.",
    ),
    (
        "gate.forced",
        "Activated by override, whatever the figures.",
        "Activé par forçage, quels que soient les chiffres.",
    ),
    (
        "gate.candidate_auc",
        "New version's ROC AUC on its holdout",
        "AUC ROC de la nouvelle version sur son jeu de test",
    ),
    (
        "gate.active_auc",
        "Active version's ROC AUC on the same deals",
        "AUC ROC de la version active sur les mêmes affaires",
    ),
    ("gate.tolerance", "Tolerance", "Tolérance"),
    ("gate.basis", "Decided on", "Décidé sur"),
    (
        "gate.basis_backtest",
        "the backtests of the same deals",
        "les backtests des mêmes affaires",
    ),
    ("gate.backtest_as_of", "Backtest as of", "Backtest à la date du"),
    (
        "gate.backtest_deals",
        "Deals open then, closed since",
        "Affaires ouvertes alors, clôturées depuis",
    ),
    (
        "gate.candidate_backtest_auc",
        "New version's backtest ROC AUC",
        "AUC ROC du backtest de la nouvelle version",
    ),
    (
        "gate.active_backtest_auc",
        "Active version's backtest ROC AUC",
        "AUC ROC du backtest de la version active",
    ),
    (
        "gate.active_age",
        "Age of the active version (days)",
        "Âge de la version active (jours)",
    ),
    ("gate.max_age", "Maximum age (days)", "Âge maximal (jours)"),
    ("compare.metrics", "Metrics", "Mesures"),
    ("compare.factors", "Factor importance", "Importance des facteurs"),
    (
        "compare.factors_help",
        "How much each factor moves the scores (spread of its effect on the log-odds across deals); a dash when a version does not use it.",
        "Combien chaque facteur fait varier les scores (dispersion de son effet en log-cote selon les affaires)\u{202F}; un tiret quand une version ne l'utilise pas.",
    ),
    ("models.population", "Population", "Population"),
    ("models.feature", "Feature", "Variable"),
    ("models.level", "Level", "Niveau"),
    ("model.candidate", "candidate", "candidat"),
    ("model.active", "active", "actif"),
    ("model.retired", "retired", "retiré"),
    ("model.activate", "Activate", "Activer"),
    (
        "model.rollback",
        "Roll back to this version",
        "Revenir à cette version",
    ),
    (
        "model.activated",
        "The version is now active.",
        "La version est maintenant active.",
    ),
    ("model.holdout", "Holdout", "Jeu de test"),
    ("model.holdout_rows", "Holdout rows", "Lignes de test"),
    ("model.grade_cuts", "Grade cut points", "Seuils des notes"),
    (
        "model.grade_cuts_open",
        "quartiles of the deals open at training",
        "quartiles des affaires ouvertes à l'entraînement",
    ),
    (
        "model.grade_cuts_holdout",
        "quartiles of the holdout deals",
        "quartiles des affaires de test",
    ),
    (
        "model.grade_cuts_fixed",
        "the configured fixed cuts (none recorded with this model)",
        "les seuils fixes configurés (aucun enregistré avec ce modèle)",
    ),
    ("model.baseline", "Baseline", "Référence"),
    (
        "model.metrics",
        "Metrics on unseen deals",
        "Mesures sur des affaires jamais vues",
    ),
    ("model.metric", "Metric", "Mesure"),
    ("backtest.title", "Backtest: deals open on", "Rétro-test\u{202F}: affaires ouvertes le"),
    (
        "backtest.explain",
        "The model's method replayed on what was known that day, scoring the deals then open as they stood, against how they ended: the quality of the scores reps act on.",
        "La méthode du modèle rejouée sur ce qui était connu ce jour-là, en notant les affaires alors ouvertes telles qu'elles étaient, face à leur issue\u{202F}: la qualité des scores sur lesquels agissent les commerciaux.",
    ),
    ("backtest.open_deals", "Open deals", "Affaires ouvertes"),
    ("backtest.won", "won since", "gagnées depuis"),
    ("backtest.with_history", "with a recorded history", "avec un historique enregistré"),
    ("backtest.mean_probability", "Mean predicted probability", "Probabilité prédite moyenne"),
    ("backtest.win_rate", "Eventual win rate", "Taux de gain final"),
    ("backtest.age", "Age then (days)", "Âge alors (jours)"),
    ("backtest.deals", "Deals", "Affaires"),
    ("backtest.none", "No backtest: the data had no dates, or too few deals had closed before the holdout period.", "Pas de rétro-test\u{202F}: les données n'avaient pas de dates, ou trop peu d'affaires étaient closes avant la période de test."),
    (
        "model.calibration",
        "Calibration (reliability)",
        "Calibration (fiabilité)",
    ),
    (
        "model.predicted",
        "Predicted win probability",
        "Probabilité de gain prédite",
    ),
    ("model.observed", "Observed win rate", "Taux de gain observé"),
    ("model.roc", "ROC curve", "Courbe ROC"),
    ("model.fpr", "False positive rate", "Taux de faux positifs"),
    ("model.tpr", "True positive rate", "Taux de vrais positifs"),
    (
        "model.no_roc",
        "This version was trained before ROC curves were recorded.",
        "Cette version a été entraînée avant l'enregistrement des courbes ROC.",
    ),
    ("model.effects", "Factor effects", "Effets des facteurs"),
    (
        "model.effects_help",
        "Log-odds effect of each bin or category; ×n is the odds ratio.",
        "Effet en log-cote de chaque tranche ou catégorie\u{202F}; ×n est le rapport de cotes.",
    ),
    ("model.activations", "Activations", "Activations"),
    (
        "model.pick_two",
        "Pick two versions to compare.",
        "Choisissez deux versions à comparer.",
    ),
    (
        "compare.holdout_of",
        "Both scored on the holdout of",
        "Les deux évaluées sur le jeu de test de",
    ),
    ("phase.queued", "waiting for its turn", "en attente de son tour"),
    ("phase.loading", "reading the closed deals", "lecture des affaires clôturées"),
    ("phase.cross_validation", "cross-validation", "validation croisée"),
    ("phase.holdout_fit", "fit on the training part", "ajustement sur la partie d'entraînement"),
    ("phase.final_fit", "fit on every closed deal", "ajustement sur toutes les affaires clôturées"),
    ("phase.gate", "promotion gate", "contrôle de promotion"),
    ("phase.done", "done", "terminé"),
    ("phase.failed", "failed", "échoué"),
    ("run.queued", "queued", "en attente"),
    ("run.running", "running", "en cours"),
    ("run.succeeded", "succeeded", "réussi"),
    (
        "run.unchanged",
        "unchanged data: the active model was trained on the same deals, features and options",
        "données inchangées\u{202F}: le modèle actif a été entraîné sur les mêmes affaires, variables et options",
    ),
    ("run.failed", "failed", "échoué"),
    ("run.none", "No training run", "Aucun entraînement"),
    ("run.progress", "Progress", "Progression"),
    (
        "run.reload",
        "Reload the page to follow the progress.",
        "Rechargez la page pour suivre la progression.",
    ),
    ("drift.ok", "ok", "ok"),
    ("drift.watch", "watch", "à surveiller"),
    ("drift.alert", "alert", "alerte"),
    ("drift.none", "no data", "pas de données"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `t.get("…")` key written in a template or a page.
    fn keys_used() -> Vec<String> {
        let mut sources = Vec::new();
        let root = env!("CARGO_MANIFEST_DIR");
        for dir in ["templates/web", "src/web", "src/web/pages"] {
            let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.path().is_file() {
                    sources.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
                }
            }
        }
        let mut keys = Vec::new();
        for text in sources {
            for piece in text.split("get(\"").skip(1) {
                if let Some(key) = piece.split('"').next() {
                    if key.contains('.') && !key.contains(' ') {
                        keys.push(key.to_string());
                    }
                }
            }
        }
        keys
    }

    #[test]
    fn every_key_used_exists_in_both_languages() {
        let used = keys_used();
        assert!(used.len() > 50, "the scan found the templates");
        let missing: Vec<&String> = used
            .iter()
            .filter(|k| !table().contains_key(k.as_str()))
            .collect();
        assert!(missing.is_empty(), "missing UI texts: {missing:?}");
        for (key, en, fr) in CATALOGUE {
            assert!(!en.is_empty() && !fr.is_empty(), "{key}");
        }
        assert_eq!(table().len(), CATALOGUE.len(), "a key is listed twice");
    }

    /// French puts a narrow no-break space before `:` `;` `!` `?` `%`, never an ordinary or a
    /// full no-break space, and never nothing.
    #[test]
    fn french_texts_follow_french_typography() {
        let mut wrong = Vec::new();
        for (key, _, fr) in CATALOGUE {
            let chars: Vec<char> = fr.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                // `GET /v1/…` and `http://` are code, not prose.
                let code = *c == ':' && chars.get(i + 1) == Some(&'/');
                if i > 0 && [':', ';', '!', '?', '%'].contains(c) && !code && chars[i - 1] != '\u{202F}' {
                    wrong.push(format!("{key}: {fr}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        assert_eq!(Text(Lang::Fr).colon(), "\u{202F}: ");
        assert_eq!(Text(Lang::En).colon(), ": ");
    }

    #[test]
    fn french_and_english_differ_where_they_should() {
        assert_eq!(Text(Lang::En).get("nav.deals"), "My deals");
        assert_eq!(Text(Lang::Fr).get("nav.deals"), "Mes affaires");
        assert_eq!(Text(Lang::Fr).get("kpi.win_rate"), "Taux de gain");
    }
}
