//! Cross-field rules, run after deserialization; problems located by key.

#[allow(unused_imports)]
use super::*;

pub(super) fn validate(config: &Config, at: &Located<'_, '_>) -> Vec<Problem> {
    use PathItem::{I, K};
    let mut problems = Vec::new();

    let gw = &config.gateway;
    if gw.url.is_some() && gw.secret.is_empty() {
        problems.push(at.problem_at(
            &[K("gateway"), K("secret")],
            &[K("gateway"), K("url")],
            "required when gateway.url is set (tyk.conf \"secret\"; e.g. secret = \"${TYK_GW_SECRET}\")"
                .to_owned(),
        ));
    }
    if let Some(storage) = &gw.storage {
        storage::validate(storage, at, &mut problems);
    }
    if gw.history < gw.poll_interval {
        problems.push(at.problem_at(
            &[K("gateway"), K("history")],
            &[K("gateway"), K("poll_interval")],
            format!(
                "must be at least gateway.poll_interval ({:?}), got {:?}",
                gw.poll_interval, gw.history
            ),
        ));
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, hook) in config.webhooks.iter().enumerate() {
        let first = *seen.entry(&hook.name).or_insert(i);
        if first != i {
            problems.push(at.problem_at(
                &[K("webhooks"), I(i), K("name")],
                &[],
                format!(
                    "duplicate webhook name {:?} (also webhooks[{first}])",
                    hook.name
                ),
            ));
        }
    }

    for (i, route) in config.routes.iter().enumerate() {
        for (j, name) in route.webhooks.iter().enumerate() {
            if !config.webhooks.iter().any(|w| &w.name == name) {
                let defined: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
                let defined = if defined.is_empty() {
                    "no [[webhooks]] are defined".to_owned()
                } else {
                    format!("defined: {}", defined.join(", "))
                };
                problems.push(at.problem_at(
                    &[K("routes"), I(i), K("webhooks"), I(j)],
                    &[],
                    format!("unknown webhook {name:?} ({defined})"),
                ));
            }
        }
        if route.events.is_empty() {
            problems.push(at.problem_at(
                &[K("routes"), I(i), K("events")],
                &[K("routes"), I(i)],
                "must name at least one event pattern (\"*\" = every event)".to_owned(),
            ));
        }
        if !route.email_org
            && !route.email_developer
            && route.email_to.is_empty()
            && route.webhooks.is_empty()
        {
            problems.push(
                at.problem_at(
                    &[K("routes"), I(i)],
                    &[],
                    "the route sends nowhere: set email_org, email_to, email_developer or webhooks"
                        .to_owned(),
                ),
            );
        }
    }

    let email = &config.email_backend;
    if email.enable_email_notifications && email.default_from_email.is_empty() {
        problems.push(at.problem_at(
            &[K("email_backend"), K("default_from_email")],
            &[K("email_backend"), K("enable_email_notifications")],
            "required when email_backend.enable_email_notifications is true".to_owned(),
        ));
    }

    if let Some((key, message)) = email.settings_problem() {
        problems.push(at.problem_at(
            &[K("email_backend"), K("settings"), K(key)],
            &[K("email_backend"), K("code")],
            message,
        ));
    }

    let intake = &config.intake;
    if let Some(addr) = intake.listen
        && !addr.ip().is_loopback()
        && intake.secret.is_empty()
    {
        problems.push(at.problem_at(
            &[K("intake"), K("secret")],
            &[K("intake"), K("listen")],
            format!("required when intake.listen ({addr}) is not a loopback address"),
        ));
    }
    // A secret a sender can guess in a few tries protects nothing.
    let secret_len = intake.secret.expose().chars().count();
    if secret_len > 0 && secret_len < MIN_INTAKE_SECRET {
        problems.push(at.problem_at(
            &[K("intake"), K("secret")],
            &[K("intake")],
            format!(
                "too short ({secret_len} characters): use at least {MIN_INTAKE_SECRET} \
                 (e.g. `openssl rand -hex 24`)"
            ),
        ));
    }
    if intake.max_connections == 0 {
        problems.push(at.problem_at(
            &[K("intake"), K("max_connections")],
            &[K("intake")],
            "must be at least 1".to_owned(),
        ));
    }

    problems
}

/// Shortest `[intake] secret` accepted.
pub const MIN_INTAKE_SECRET: usize = 16;
