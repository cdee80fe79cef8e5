//! Tyk Developer Portal e-mail template variables → tykwatch's template context, for
//! `templates import-go --as NAME` (the table is in `email_templates/README.md`).
//!
//! The Portal renders its mails (theme `mailers/`, Tyk docs *Developer Portal templates*,
//! "Email Templates") with the user as `{{ .user }}` (welcome, new user), `{{ current_user }}`
//! (reset password) or `{{ user }}` (invite), its name as `{{ .name }}` (activate / deactivate),
//! and the link as `{{ reset_password_url }}` / `{{ invite_url }}`. tykwatch renders the same
//! mails from the Portal's webhook (`UserRegistered`, `PasswordReset`: the user is `Message`,
//! in the context as `data`) or from the Dashboard's `key_request_event` (the developer is
//! `data.portal_developer`). What a webhook does not carry is refused with the reason, never
//! guessed.

/// How the Portal's user object reads in the context of one target template.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserMap {
    /// The user object itself (`{{ if .user }}`).
    pub base: &'static str,
    /// User field → minijinja expression (atomic: can take a filter or a field).
    pub fields: &'static [(&'static str, &'static str)],
    /// Fields the Portal documents that this context does not have, and why.
    pub missing: &'static str,
}

/// Contexts of Portal webhooks (`welcome`, `password_reset`, `portal_*`): the user is the
/// event's `Message` (`ID`, `Email`, `First`, `Last`, `OrgID`, `Provider`, `Status`, …).
const PORTAL_USER: UserMap = UserMap {
    base: "data",
    fields: &[
        ("ID", "data.ID"),
        ("First", "data.First"),
        ("Last", "data.Last"),
        ("Email", "data.Email"),
        ("DisplayName", "((data.First ~ \" \" ~ data.Last)|trim)"),
        ("OrganisationID", "data.OrgID"),
        ("GetOrganisationID", "data.OrgID"),
        ("IdentityProvider", "data.Provider"),
        ("CustomAttributes", "data.CustomAttributes"),
    ],
    missing: "the Portal's webhook carries the user's ID, First, Last, Email, OrgID, Provider and Status only",
};

/// `password_reset`: the Portal's `PasswordReset` (as [`PORTAL_USER`]) or the Dashboard's
/// `password_reset_event` / `portal_password_reset_event` (no documented body; the shipped
/// sample has `data.email`), so each field falls back on the Dashboard's spelling.
const RESET_USER: UserMap = UserMap {
    base: "data",
    fields: &[
        ("ID", "(data.ID if data.ID is defined else \"\")"),
        ("First", "(data.First if data.First is defined else \"\")"),
        ("Last", "(data.Last if data.Last is defined else \"\")"),
        (
            "Email",
            "(data.Email if data.Email is defined else data.email)",
        ),
        (
            "DisplayName",
            "(((data.First ~ \" \" ~ data.Last)|trim) if data.First is defined else data.email)",
        ),
        (
            "OrganisationID",
            "(data.OrgID if data.OrgID is defined else data.org_id)",
        ),
        (
            "GetOrganisationID",
            "(data.OrgID if data.OrgID is defined else data.org_id)",
        ),
    ],
    missing: "a password reset event carries the user's ID, First, Last, Email and OrgID only",
};

/// Contexts of the Dashboard's `key_request_event`: the developer is `data.portal_developer`
/// (`id`, `email`, `org_id`, …; classic portal developers have no name in the payload).
const KEY_REQUEST_USER: UserMap = UserMap {
    base: "data.portal_developer",
    fields: &[
        ("ID", "data.portal_developer.id"),
        ("Email", "data.portal_developer.email"),
        ("DisplayName", "data.portal_developer.email"),
        ("OrganisationID", "data.portal_developer.org_id"),
        ("GetOrganisationID", "data.portal_developer.org_id"),
    ],
    missing: "the Dashboard's key_request_event carries the developer's id, email and org_id only",
};

/// The user mapping of a target template; `None` for templates whose data is no user event
/// (quota notices, `api_event`, `key_event`, `test`).
pub(crate) fn user_map(target: &str) -> Option<&'static UserMap> {
    match target {
        "welcome" => Some(&PORTAL_USER),
        "password_reset" => Some(&RESET_USER),
        t if t.starts_with("portal_") => Some(&PORTAL_USER),
        t if t.starts_with("key_request_") => Some(&KEY_REQUEST_USER),
        _ => None,
    }
}

impl UserMap {
    /// `user` followed by `fields` (`.user.Email`, `$u.DisplayName`) as minijinja.
    pub fn resolve(&self, shown: &str, fields: &[String]) -> Result<String, String> {
        let Some((first, rest)) = fields.split_first() else {
            return Ok(self.base.to_owned());
        };
        let Some((_, expr)) = self.fields.iter().find(|(f, _)| f == first) else {
            let known: Vec<&str> = self.fields.iter().map(|(f, _)| *f).collect();
            return Err(format!(
                "`{shown}.{first}` has no equivalent here ({}; mapped: {})",
                self.missing,
                known.join(", ")
            ));
        };
        if rest.is_empty() {
            Ok((*expr).to_owned())
        } else {
            Err(format!(
                "`{shown}.{first}.{}`: {first} has no fields",
                rest.join(".")
            ))
        }
    }
}

/// Zero-argument Portal functions that yield the user.
pub(crate) fn is_user_function(name: &str) -> bool {
    matches!(name, "current_user" | "user")
}

/// Portal functions and top-level fields tykwatch cannot provide, with the reason.
pub(crate) fn untranslatable(name: &str) -> Option<&'static str> {
    match name {
        "reset_password_url" | "invite_url" => Some(
            "tykwatch never has the Portal's token (the Portal sends the link in its own e-mail, and a token arriving on the intake is masked); drop the link or point to the portal's sign-in page",
        ),
        _ => None,
    }
}

/// The target template a Tyk Portal mailer file is imported as, from its file name
/// (`welcome_dev.html.tmpl` → `welcome`, `auth/reset_password.text.tmpl` →
/// `password_reset`); a tykwatch name (`key_event.text.tmpl`) maps to itself.
pub(crate) fn target_from_stem(stem: &str) -> Option<&str> {
    Some(match stem {
        "welcome_dev" | "welcome_admin" | "welcome" => "welcome",
        "reset" | "reset_password" | "password_reset" => "password_reset",
        "approve" | "key_request_approved" => "key_request_approved",
        "reject" | "key_request_rejected" => "key_request_rejected",
        "submitted" | "key_request_submitted" => "key_request_submitted",
        _ => return None,
    })
}
