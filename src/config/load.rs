//! Loading: parse, expand `${VAR}`, deserialize, validate; and where files live.

#[allow(unused_imports)]
use super::*;

impl Config {
    /// Parses and validates `text`. `origin` names the source in messages; `env` resolves
    /// `${VAR}` (tests pass a closure instead of mutating the process environment).
    pub fn load_from_str(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(err) => {
                let (recovered, _) = DeTable::parse_recoverable(text);
                let located = Located {
                    text,
                    origin,
                    root: &recovered,
                };
                let message = format!("invalid TOML: {}", err.message());
                return Err(ConfigError {
                    problems: vec![located.problem(err.span(), message)],
                });
            }
        };
        // `${VAR}` is expanded in the parsed document's string values before anything reads
        // them; each failure keeps its value's span. Other deserializations of these types (an
        // API body) never expand anything.
        let mut unset = Vec::new();
        expand_env(doc.get_mut(), env, &mut unset);
        let located = Located {
            text,
            origin,
            root: &doc,
        };
        if !unset.is_empty() {
            unset.sort_by_key(|(span, _)| span.start);
            return Err(ConfigError {
                problems: unset
                    .into_iter()
                    .map(|(span, message)| located.problem(Some(span), message))
                    .collect(),
            });
        }
        // serde stops at the first bad value; to report every one at once, the entry it
        // names is dropped from a copy of the document and the rest deserialized again.
        let mut problems = Vec::new();
        let mut dropped: Vec<String> = Vec::new();
        let mut work = doc.clone();
        let config = loop {
            match Config::deserialize(toml::de::Deserializer::from(work.clone())) {
                Ok(config) => break Some(config),
                Err(err) => {
                    let message = tidy_serde_message(err.message());
                    // A required key dropped for its bad value is now missing: that table goes
                    // too, without a second report.
                    let consequence = dropped
                        .iter()
                        .any(|k| message == format!("missing key `{k}`"));
                    if !consequence {
                        problems.push(located.problem(err.span(), message));
                    }
                    let next = err
                        .span()
                        .and_then(|span| drop_entry_at(work.get_mut(), span.start, consequence));
                    match next {
                        Some(key) if problems.len() < MAX_PROBLEMS => dropped.push(key),
                        _ => break None,
                    }
                }
            }
        };
        if let Some(config) = &config {
            problems.extend(validate(config, &located));
        }
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError { problems }),
        }
    }

    /// Reads `path` (errors name it) with the process environment for `${VAR}`. Relative
    /// `orgs.dir` and `monitor.configuration.template_path` are resolved against the file's
    /// directory, so the config works from any working directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::unlocated(origin.clone(), format!("cannot read config file: {e}"))
        })?;
        let mut config = Config::load_from_str(&text, &origin, &|name| std::env::var(name).ok())?;
        if let Some(base) = path.parent() {
            config.resolve_relative_paths(base);
        }
        Ok(config)
    }

    /// No gateway configured (neither its REST API nor its Redis): run against the embedded
    /// demo gateway.
    pub fn is_demo(&self) -> bool {
        self.gateway.url.is_none() && self.gateway.storage.is_none()
    }

    pub(super) fn resolve_relative_paths(&mut self, base: &Path) {
        if let Some(dir) = &mut self.orgs.dir
            && dir.is_relative()
        {
            *dir = base.join(&*dir);
        }
        let template = &mut self.monitor.configuration.template_path;
        if !template.is_empty() && Path::new(template.as_str()).is_relative() {
            *template = base.join(template.as_str()).display().to_string();
        }
    }
}

/// Where the config file, themes and data live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_file: PathBuf,
    /// Directory of the config file; user themes are in `<config_dir>/themes`.
    pub config_dir: PathBuf,
    /// SQLite database, demo e-mail files.
    pub data_dir: PathBuf,
    /// The config file was named by the user (`--config` / `TYKWATCH_CONFIG`): missing is an
    /// error rather than "use defaults".
    pub config_file_explicit: bool,
}

impl Paths {
    /// `config` and `data_dir` are the CLI/env overrides; the rest comes from
    /// `directories::ProjectDirs` (`~/.config/tykwatch`, `~/.local/share/tykwatch` on Linux).
    pub fn resolve(
        config: Option<PathBuf>,
        data_dir: Option<PathBuf>,
    ) -> Result<Paths, ConfigError> {
        let project = || {
            directories::ProjectDirs::from("", "", "tykwatch").ok_or_else(|| {
                ConfigError::unlocated(
                    "tykwatch",
                    "cannot determine the home directory; pass --config and --data-dir \
                     (or TYKWATCH_CONFIG and TYKWATCH_DATA_DIR)",
                )
            })
        };
        let (config_file, config_dir, explicit) = match config {
            Some(file) => {
                let dir = match file.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                (file, dir, true)
            }
            None => {
                let dir = project()?.config_dir().to_path_buf();
                (dir.join("config.toml"), dir, false)
            }
        };
        let data_dir = match data_dir {
            Some(dir) => dir,
            None => project()?.data_dir().to_path_buf(),
        };
        Ok(Paths {
            config_file,
            config_dir,
            data_dir,
            config_file_explicit: explicit,
        })
    }

    /// `<config_dir>/themes`, searched before the builtin themes.
    pub fn themes_dir(&self) -> PathBuf {
        self.config_dir.join("themes")
    }
}

/// Loads `paths.config_file`; a missing default file means "all defaults" (demo mode), a
/// missing file the user named is an error.
pub fn load_or_default(paths: &Paths) -> Result<Config, ConfigError> {
    // Only "not found" means no config: a config dir that is a file (ENOTDIR) or cannot be
    // searched is an error, not a silent default.
    if !paths.config_file_explicit {
        match paths.config_file.try_exists() {
            Ok(false) => return Ok(Config::default()),
            Ok(true) => {}
            Err(e) => {
                return Err(ConfigError::unlocated(
                    paths.config_file.display().to_string(),
                    format!("cannot read config file: {e}"),
                ));
            }
        }
    }
    Config::load(&paths.config_file)
}

/// Problems reported at most for one file (a file of garbage is not 500 lines of errors).
const MAX_PROBLEMS: usize = 32;

/// Removes the innermost entry whose key or (non-table) value holds byte `pos` and returns its
/// key; with `tables`, the innermost table or array item holding it. `None` when nothing does.
fn drop_entry_at(t: &mut DeTable<'_>, pos: usize, tables: bool) -> Option<String> {
    for (_, v) in t.iter_mut() {
        let inner = match v.get_mut() {
            DeValue::Table(inner) => drop_entry_at(inner, pos, tables),
            DeValue::Array(items) => {
                let mut found = None;
                for item in items.iter_mut() {
                    if let DeValue::Table(inner) = item.get_mut() {
                        found = drop_entry_at(inner, pos, tables);
                        if found.is_some() {
                            break;
                        }
                    }
                }
                if found.is_none() && tables {
                    // The item itself: a `[[table]]` whose required key is gone.
                    if let Some(i) = items.iter().position(|it| it.span().contains(&pos)) {
                        // DeArray has no `remove`: rebuild it without the item.
                        let mut kept = toml::de::DeArray::new();
                        for (j, it) in items.iter().enumerate() {
                            if j != i {
                                kept.push(it.clone());
                            }
                        }
                        *items = kept;
                        found = Some(String::new());
                    }
                }
                found
            }
            _ => None,
        };
        if inner.is_some() {
            return inner;
        }
    }
    let hit = t
        .iter()
        .find(|(k, v)| {
            k.span().contains(&pos)
                || (v.span().contains(&pos)
                    && (tables || !matches!(v.get_ref(), DeValue::Table(_))))
        })
        .map(|(k, _)| k.clone())?;
    t.remove(&hit).map(|_| hit.get_ref().to_string())
}
