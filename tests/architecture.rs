//! The layer plan of `src/lib.rs` (and docs/architecture.md), checked on the source: every
//! `crate::<module>` a file names (in `use` lines, grouped `use crate::{a, b}` included, and in
//! paths) must belong to a strictly lower layer than the file's own top-level module, or to the
//! same layer without a way back. A failure lists each offending file, e.g.
//! `src/model/mod.rs: model (L2) imports api (L7)`.
//!
//! The check reads text, not the compiler's view: comments are skipped, and a name that is not a
//! top-level module of `src/lib.rs` (a macro such as `crate::tr!`) is ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers from the lowest; a module may import only from strictly lower layers, or from its own
/// layer one way (no two modules reaching each other).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &["domain", "i18n", "config", "telemetry", "generate"],
    ),
    ("features", &["features"]),
    ("model", &["model"]),
    ("scoring and training", &["scoring", "training"]),
    ("store", &["store"]),
    (
        "serving and shared services",
        &["serving", "error", "refresh", "rescoring", "retention"],
    ),
    (
        "services",
        &[
            "ingest",
            "insights",
            "lifecycle",
            "drift",
            "ranking",
            "auth",
            "warmup",
        ],
    ),
    ("front ends", &["api", "web"]),
    ("application", &["app"]),
    ("command line", &["cli"]),
];

/// Same-layer imports that are refused outright, whichever way they go.
const SEPARATE: &[(&str, &str, &str)] = &[
    (
        "api",
        "web",
        "the two front ends share services from lower layers, never each other",
    ),
    (
        "training",
        "scoring",
        "training fits the model; scoring reads it and is never needed to train",
    ),
];

/// Imports the rules would refuse, each allowed here with its reason.
const EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "scoring",
    "training",
    "test code only: scoring's unit tests train their model with `training::fixtures`",
)];

/// Top-level modules whose own sub-modules must import each other one way only.
const ONE_WAY_INSIDE: &[&str] = &["ingest", "insights", "lifecycle"];

/// The plan a source tree is checked against.
struct Plan<'a> {
    layers: &'a [(&'a str, &'a [&'a str])],
    separate: &'a [(&'a str, &'a str, &'a str)],
    exceptions: &'a [(&'a str, &'a str, &'a str)],
    one_way_inside: &'a [&'a str],
}

const PLAN: Plan<'static> = Plan {
    layers: LAYERS,
    separate: SEPARATE,
    exceptions: EXCEPTIONS,
    one_way_inside: ONE_WAY_INSIDE,
};

impl Plan<'_> {
    fn layer(&self, module: &str) -> Option<usize> {
        self.layers
            .iter()
            .position(|(_, modules)| modules.contains(&module))
    }

    fn excepted(&self, from: &str, to: &str) -> bool {
        self.exceptions.iter().any(|(a, b, _)| *a == from && *b == to)
    }

    fn separate(&self, from: &str, to: &str) -> bool {
        self.separate
            .iter()
            .any(|(a, b, _)| (*a == from && *b == to) || (*a == to && *b == from))
    }
}

/// `text` without its `//` and `/* */` comments (doc comments included), lines kept. String,
/// raw string and character literals are skipped over whole, so `"http://…"` or `'"'` cannot
/// start or end a comment.
fn strip_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        // `r"…"` and `br"…"` start raw strings; `for"` or `xr"` do not.
        let previous_is_ident =
            i > 0 && is_ident(chars[i - 1]) && !(chars[i - 1] == 'b' && (i < 2 || !is_ident(chars[i - 2])));
        match c {
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                let mut depth = 0usize;
                while let Some(c) = at(i) {
                    if c == '/' && at(i + 1) == Some('*') {
                        depth += 1;
                        i += 2;
                    } else if c == '*' && at(i + 1) == Some('/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if c == '\n' {
                            out.push('\n');
                        }
                        i += 1;
                    }
                }
            }
            'r' if !previous_is_ident && matches!(at(i + 1), Some('#' | '"')) => {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if at(i + 1 + hashes) != Some('"') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                let start = i;
                i += 2 + hashes;
                while let Some(c) = at(i) {
                    i += 1;
                    if c == '"' && chars[i..].iter().take(hashes).filter(|c| **c == '#').count() == hashes {
                        i += hashes;
                        break;
                    }
                }
                out.extend(&chars[start..i.min(chars.len())]);
            }
            '"' => {
                let start = i;
                i += 1;
                while let Some(c) = at(i) {
                    i += 1;
                    match c {
                        '\\' => i += 1,
                        '"' => break,
                        _ => {}
                    }
                }
                out.extend(&chars[start..i.min(chars.len())]);
            }
            '\'' => {
                // A character literal ('x', '\n', '\u{..}') or a lifetime ('a, no closing quote).
                let end = if at(i + 1) == Some('\\') {
                    chars[i + 2..].iter().position(|c| *c == '\'').map(|p| i + 3 + p)
                } else if at(i + 2) == Some('\'') {
                    Some(i + 3)
                } else {
                    None
                };
                let end = end.unwrap_or(i + 1).min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The leading identifier of `text` (after spaces).
fn leading_ident(text: &str) -> &str {
    let text = text.trim_start();
    let end = text.find(|c: char| !is_ident(c)).unwrap_or(text.len());
    &text[..end]
}

/// The first path segment after each `prefix` in `code` (`prefix` ends with `::`), the items of
/// a group `prefix{a, b::c}` included. `prefix` must not be preceded by an identifier character
/// (`mycrate::` is not `crate::`).
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(found) = code[from..].find(prefix) {
        let at = from + found;
        from = at + prefix.len();
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        names.insert(leading_ident(&group[item_start..i]).to_owned());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(leading_ident(&group[item_start..i]).to_owned());
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(leading_ident(rest).to_owned());
        }
    }
    names.remove("");
    names
}

/// The module path of a file under `src/` (`src/insights/at_risk.rs` → `["insights",
/// "at_risk"]`, `src/lifecycle/mod.rs` → `["lifecycle"]`).
fn module_path(file: &str) -> Vec<&str> {
    let inner = file.strip_prefix("src/").unwrap_or(file);
    let inner = inner.strip_suffix(".rs").unwrap_or(inner);
    let mut parts: Vec<&str> = inner.split('/').collect();
    if parts.last() == Some(&"mod") {
        parts.pop();
    }
    parts
}

/// One file's imports of other top-level modules, and (inside a module checked for one-way
/// sub-modules) of its siblings.
struct FileImports<'a> {
    file: &'a str,
    module: &'a str,
    modules: BTreeSet<String>,
    /// (own sub-module, sibling sub-module it imports).
    siblings: Vec<(&'a str, String)>,
}

fn imports<'a>(
    file: &'a str,
    text: &str,
    plan: &Plan,
    top_level: &BTreeSet<String>,
) -> Option<FileImports<'a>> {
    let path = module_path(file);
    let module = *path.first()?;
    if module == "lib" || module == "main" {
        return None;
    }
    let code = strip_comments(text);
    let modules = names_after(&code, "crate::")
        .into_iter()
        .filter(|m| m != module && top_level.contains(m))
        .collect();
    let mut siblings = Vec::new();
    if plan.one_way_inside.contains(&module) && path.len() >= 2 {
        let own = path[1];
        let mut names = names_after(&code, &format!("crate::{module}::"));
        // `super::x` names a sibling from a direct child (`src/m/a.rs` or `src/m/a/mod.rs`).
        if path.len() == 2 {
            names.extend(names_after(&code, "super::"));
        }
        for name in names {
            if name != own && name != "self" && name != "super" {
                siblings.push((own, name));
            }
        }
    }
    Some(FileImports {
        file,
        module,
        modules,
        siblings,
    })
}

/// Every breach of `plan` in `files` (path under `src/`, text), one readable line each; empty
/// when the plan holds. `top_level` are the modules `src/lib.rs` declares.
fn check(files: &[(String, String)], top_level: &BTreeSet<String>, plan: &Plan) -> Vec<String> {
    let mut problems = Vec::new();
    for module in top_level {
        if plan.layer(module).is_none() {
            problems.push(format!(
                "src/lib.rs: module `{module}` is in no layer; add it to LAYERS in tests/architecture.rs \
                 and to the plan in src/lib.rs and docs/architecture.md"
            ));
        }
    }
    let found: Vec<FileImports> = files
        .iter()
        .filter_map(|(file, text)| imports(file, text, plan, top_level))
        .collect();
    // module → imported module → files that import it.
    let mut edges: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for f in &found {
        for to in &f.modules {
            edges
                .entry(f.module)
                .or_default()
                .entry(to.as_str())
                .or_default()
                .push(f.file);
        }
    }
    let label = |m: &str| match plan.layer(m) {
        Some(l) => format!("{m} (L{l})"),
        None => format!("{m} (no layer)"),
    };
    for (from, targets) in &edges {
        let Some(from_layer) = plan.layer(from) else {
            continue;
        };
        for (to, files) in targets {
            let Some(to_layer) = plan.layer(to) else {
                continue;
            };
            if plan.excepted(from, to) {
                continue;
            }
            let why = if to_layer > from_layer {
                String::new()
            } else if to_layer == from_layer && plan.separate(from, to) {
                ", which it must never import (same layer, kept apart)".to_owned()
            } else if to_layer == from_layer {
                match way_back(&edges, plan, to, from) {
                    Some(back) => format!(", which imports it back ({})", back.join(" → ")),
                    None => continue,
                }
            } else {
                continue;
            };
            for file in files {
                problems.push(format!("{file}: {} imports {}{why}", label(from), label(to)));
            }
        }
    }
    // Sibling sub-modules of the modules kept one way inside.
    let mut inner: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
    for f in &found {
        for (own, sibling) in &f.siblings {
            inner
                .entry((f.module, own, sibling.as_str()))
                .or_default()
                .push(f.file);
        }
    }
    for ((module, a, b), files) in &inner {
        if let Some(back) = inner.get(&(*module, *b, *a)) {
            for file in files {
                problems.push(format!(
                    "{file}: {module}::{a} imports {module}::{b}, which imports it back ({})",
                    back.join(", ")
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// A chain of same-layer imports from `start` back to `target` (`start → … → target`), if any.
fn way_back(
    edges: &BTreeMap<&str, BTreeMap<&str, Vec<&str>>>,
    plan: &Plan,
    start: &str,
    target: &str,
) -> Option<Vec<String>> {
    let layer = plan.layer(start)?;
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![start.to_owned()]];
    while let Some(chain) = stack.pop() {
        let last = chain.last()?.clone();
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in edges.get(last.as_str()).into_iter().flat_map(|t| t.keys()) {
            if plan.layer(next) != Some(layer) || plan.excepted(&last, next) {
                continue;
            }
            let mut longer = chain.clone();
            longer.push((*next).to_owned());
            if *next == target {
                return Some(longer);
            }
            stack.push(longer);
        }
    }
    None
}

/// The top-level modules `src/lib.rs` declares (`pub mod x;` / `mod x;`).
fn declared_modules(lib: &str) -> BTreeSet<String> {
    strip_comments(lib)
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))?;
            Some(rest.strip_suffix(';')?.trim().to_owned())
        })
        .collect()
}

fn read_tree(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name = relative.to_string_lossy().replace('\\', "/");
            out.push((name, text));
        }
    }
}

#[test]
fn layers_are_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs");
    let top_level = declared_modules(&lib);
    assert!(
        top_level.len() > 10,
        "no modules found in src/lib.rs: {top_level:?}"
    );
    let mut files = Vec::new();
    read_tree(&root.join("src"), root, &mut files);
    let problems = check(&files, &top_level, &PLAN);
    assert!(
        problems.is_empty(),
        "the layer plan (src/lib.rs, docs/architecture.md) is broken:\n{}",
        problems.join("\n")
    );
}

#[cfg(test)]
mod checker {
    use super::*;

    fn modules() -> BTreeSet<String> {
        [
            "domain",
            "model",
            "scoring",
            "training",
            "api",
            "web",
            "insights",
            "lifecycle",
            "ingest",
            "drift",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    }

    fn run(files: &[(&str, &str)]) -> Vec<String> {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
            .collect();
        check(&files, &modules(), &PLAN)
    }

    #[test]
    fn an_upward_import_is_flagged() {
        assert_eq!(
            run(&[(
                "src/model/mod.rs",
                "use crate::api;\nuse crate::domain::Opportunity;\n"
            )]),
            ["src/model/mod.rs: model (L2) imports api (L7)"]
        );
    }

    #[test]
    fn a_path_in_code_and_a_grouped_import_are_seen() {
        let text =
            "use crate::{\n    domain::{Opportunity, Status},\n    web,\n};\nfn f() { crate::api::x(); }\n";
        assert_eq!(
            run(&[("src/model/predict.rs", text)]),
            [
                "src/model/predict.rs: model (L2) imports api (L7)",
                "src/model/predict.rs: model (L2) imports web (L7)",
            ]
        );
    }

    #[test]
    fn comments_macros_and_other_crates_are_not_imports() {
        let text = "//! see [`crate::api`]\n/* crate::web */\nuse mycrate::api;\nfn f() { crate::tr!(\"a\", \"b\"); }\n";
        assert!(run(&[("src/model/mod.rs", text)]).is_empty());
    }

    #[test]
    fn downward_and_one_way_same_layer_imports_pass() {
        assert!(run(&[
            (
                "src/api/models.rs",
                "use crate::model::ModelArtifact;\nuse crate::lifecycle::registry;\n"
            ),
            (
                "src/lifecycle/runner.rs",
                "use crate::domain::Opportunity;\nuse crate::drift::x;\n"
            ),
        ])
        .is_empty());
    }

    #[test]
    fn a_circle_within_a_layer_is_flagged() {
        let problems = run(&[
            ("src/ingest/a.rs", "use crate::drift::x;\n"),
            ("src/drift/b.rs", "use crate::insights::y;\n"),
            ("src/insights/c.rs", "use crate::ingest::z;\n"),
        ]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.contains(
            &"src/ingest/a.rs: ingest (L6) imports drift (L6), which imports it back (drift → insights → ingest)"
                .to_owned()
        ));
    }

    #[test]
    fn modules_kept_apart_may_not_import_each_other_at_all() {
        assert_eq!(
            run(&[("src/web/pages/models.rs", "use crate::api::models::load_verified;\n")]),
            ["src/web/pages/models.rs: web (L7) imports api (L7), which it must never import (same layer, kept apart)"]
        );
        assert_eq!(
            run(&[("src/training/fit.rs", "use crate::scoring::score;\n")]).len(),
            1
        );
    }

    #[test]
    fn a_written_down_exception_passes() {
        assert!(run(&[(
            "src/scoring/lever_tests.rs",
            "use crate::training::fixtures::trained;\n"
        )])
        .is_empty());
    }

    #[test]
    fn sibling_sub_modules_importing_each_other_are_flagged() {
        let problems = run(&[
            ("src/insights/snapshot.rs", "use super::at_risk::Basis;\n"),
            (
                "src/insights/at_risk.rs",
                "use crate::insights::snapshot::Snapshot;\n",
            ),
            ("src/insights/pipeline.rs", "use super::snapshot::Snapshot;\n"),
        ]);
        assert_eq!(
            problems,
            [
                "src/insights/at_risk.rs: insights::at_risk imports insights::snapshot, which imports it back (src/insights/snapshot.rs)",
                "src/insights/snapshot.rs: insights::snapshot imports insights::at_risk, which imports it back (src/insights/at_risk.rs)",
            ]
        );
    }

    #[test]
    fn a_module_outside_the_plan_is_flagged() {
        let mut top_level = modules();
        top_level.insert("newcomer".to_owned());
        let problems = check(&[], &top_level, &PLAN);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("src/lib.rs: module `newcomer` is in no layer"));
    }

    #[test]
    fn the_plan_names_each_module_once() {
        let mut seen = BTreeSet::new();
        for (_, modules) in LAYERS {
            for m in *modules {
                assert!(seen.insert(*m), "{m} is in two layers");
            }
        }
    }
}
