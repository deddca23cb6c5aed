//! `dealscore score`: batch scoring of a CSV for analysts, every input row written back with
//! result columns.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::Settings;
use crate::domain::spreadsheet;

/// Arguments of `dealscore score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Opportunities CSV (same format as `import`).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Column mapping.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Output CSV (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Score with this artifact instead of the database's active model.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Start the output with a UTF-8 byte order mark, so spreadsheet programs read it as UTF-8
    /// ("—", "é") rather than in the system's legacy code page.
    #[arg(long)]
    pub bom: bool,
    /// Score every deal as it stood at this instant (`YYYY-MM-DD` for its midnight UTC, or RFC
    /// 3339): ages are counted to it, so the same file scored with the same `--as-of` gives the
    /// same scores whatever day it runs. Default: now.
    #[arg(long, value_name = "TIME", value_parser = parse_as_of)]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// Reads `--as-of` as the API reads `as_of`; clap prints the reason and exits with 2.
fn parse_as_of(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::insights::period::parse_from(text)
        .map(crate::domain::from_epoch_ms)
        .map_err(|message| message.get(crate::i18n::Lang::En).to_owned())
}

/// Result columns appended by `dealscore score`.
const SCORE_COLUMNS: [&str; 11] = [
    "probability",
    "score",
    "grade",
    "focus",
    "expected_value",
    "next_intervention",
    "lever",
    "uplift",
    "top_factors",
    "model_version",
    "error",
];

/// How many factors the `top_factors` column lists, strongest first.
const TOP_FACTORS: usize = 3;

/// Separates the sentences of the `top_factors` column (sentences hold commas and semicolons).
const FACTOR_SEPARATOR: &str = " | ";

/// The strongest factors of a score, raising or lowering, as sentences in one cell.
fn top_factors(factors: &[crate::scoring::Factor]) -> String {
    let mut strongest: Vec<&crate::scoring::Factor> = factors.iter().collect();
    strongest.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    strongest
        .iter()
        .take(TOP_FACTORS)
        .map(|f| f.message.as_str())
        .collect::<Vec<_>>()
        .join(FACTOR_SEPARATOR)
}

/// Runs `dealscore score` with the active model, or the artifact given by `--model`.
pub async fn run(settings: &Settings, args: ScoreArgs) -> anyhow::Result<()> {
    let mapping = super::read_mapping(args.mapping.as_deref())?;
    // Wrapped so the model's fixed sentences are written once, not once per row.
    let model = crate::serving::LoadedModel::new(match &args.model {
        Some(path) => crate::model::ModelArtifact::load_verified(path)
            .with_context(|| format!("model {}", path.display()))?,
        None => {
            let db = super::open_existing_db(settings).await?;
            let (record, json) = crate::store::models::active(&db).await?.with_context(|| {
                format!(
                    "no active model in the database at {}: train one with `dealscore train`, \
                     or pass --model FILE",
                    super::describe_database_url(settings)
                )
            })?;
            crate::model::ModelArtifact::from_json_verified(&json)
                .with_context(|| format!("active model {}", record.version))?
        }
    });
    let file =
        std::fs::File::open(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    if args.bom {
        std::io::Write::write_all(&mut out, "\u{FEFF}".as_bytes())?;
    }
    let mut writer = csv::Writer::from_writer(out);
    let now = args.as_of.unwrap_or_else(chrono::Utc::now);
    let (mut scored, mut rejected, mut header_written) = (0u64, 0u64, false);
    crate::ingest::csv_import::for_each_row(
        std::io::BufReader::new(file),
        &mapping,
        |headers, record, parsed| {
            if !header_written {
                let mut header: Vec<&str> = headers.iter().collect();
                header.extend(SCORE_COLUMNS);
                spreadsheet::write_record(&mut writer, &header).map_err(std::io::Error::other)?;
                header_written = true;
            }
            let mut row: Vec<String> = record.iter().map(str::to_owned).collect();
            row.resize(headers.len(), String::new());
            match parsed {
                Ok(opp) => {
                    scored += 1;
                    let r = crate::scoring::score(
                        &model,
                        &settings.scoring,
                        &opp,
                        now,
                        None,
                        crate::scoring::RankBy::Probability,
                        crate::i18n::Lang::En,
                    );
                    row.extend([
                        format!("{:.6}", r.probability),
                        r.score.to_string(),
                        r.grade.as_str().to_owned(),
                        r.focus.as_str().to_owned(),
                        r.expected_value.map(|v| format!("{v:.2}")).unwrap_or_default(),
                        r.next_intervention
                            .as_ref()
                            .map(|n| n.message.clone())
                            .unwrap_or_default(),
                        r.next_intervention
                            .as_ref()
                            .map(|n| n.feature.clone())
                            .unwrap_or_default(),
                        r.next_intervention
                            .as_ref()
                            .map(|n| format!("{:.6}", n.uplift))
                            .unwrap_or_default(),
                        top_factors(&r.factors),
                        r.model_version,
                        String::new(),
                    ]);
                }
                Err(e) => {
                    rejected += 1;
                    row.extend(std::iter::repeat_n(String::new(), SCORE_COLUMNS.len() - 1));
                    row.push(format!("line {}: {}", e.line, e.reason));
                }
            }
            // Input cells are echoed: escaped like every export (docs/operations.md, Security).
            spreadsheet::write_record(&mut writer, &row).map_err(std::io::Error::other)
        },
    )
    .with_context(|| format!("{}", args.file.display()))?;
    writer.flush()?;
    eprintln!(
        "scored {scored} opportunities with model {} as of {} ({rejected} rows rejected)",
        model.version,
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    Ok(())
}
