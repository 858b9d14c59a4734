//! Request hints: security level, priority, latency SLO. Unknown values are refused.

use serde::Serialize;

use crate::request::Hints;

/// Where a request may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecurityLevel {
    /// Anywhere, remote upstreams included.
    #[default]
    Public,
    /// On this box or the operator's own upstreams.
    Internal,
    /// Local CPU engines only; never a remote upstream.
    Airgap,
}

/// Scheduling priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Background work.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Interactive work.
    High,
}

/// Validated hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct ParsedHints {
    /// Security level.
    pub security: SecurityLevel,
    /// Priority.
    pub priority: Priority,
    /// Latency target in milliseconds.
    pub slo_ms: Option<u32>,
}

/// A hint with a value the router does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintError {
    /// The hint (`security`, `priority`, `slo_ms`).
    pub hint: &'static str,
    /// What was sent.
    pub value: String,
    /// What is accepted.
    pub expected: &'static str,
}

/// Validates raw hints.
pub fn parse(hints: &Hints) -> Result<ParsedHints, HintError> {
    let security = match hints.security.as_deref().map(str::trim) {
        None | Some("") => SecurityLevel::Public,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "public" => SecurityLevel::Public,
            "internal" => SecurityLevel::Internal,
            "airgap" | "air-gap" | "airgapped" => SecurityLevel::Airgap,
            _ => {
                return Err(HintError {
                    hint: "security",
                    value: v.to_owned(),
                    expected: "public, internal or airgap",
                })
            }
        },
    };
    let priority = match hints.priority.as_deref().map(str::trim) {
        None | Some("") => Priority::Normal,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "low" => Priority::Low,
            "normal" => Priority::Normal,
            "high" => Priority::High,
            _ => {
                return Err(HintError {
                    hint: "priority",
                    value: v.to_owned(),
                    expected: "low, normal or high",
                })
            }
        },
    };
    let slo_ms = match hints.slo_ms.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => match v.trim_end_matches("ms").parse::<u32>() {
            Ok(ms) if ms > 0 => Some(ms),
            _ => {
                return Err(HintError {
                    hint: "slo_ms",
                    value: v.to_owned(),
                    expected: "a positive number of milliseconds",
                })
            }
        },
    };
    Ok(ParsedHints {
        security,
        priority,
        slo_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(security: Option<&str>, priority: Option<&str>, slo: Option<&str>) -> Hints {
        Hints {
            security: security.map(Into::into),
            priority: priority.map(Into::into),
            slo_ms: slo.map(Into::into),
        }
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse(&Hints::default()).unwrap(), ParsedHints::default());
        let p = parse(&hints(Some("AirGap"), Some("high"), Some("250ms"))).unwrap();
        assert_eq!(
            (p.security, p.priority, p.slo_ms),
            (SecurityLevel::Airgap, Priority::High, Some(250))
        );
    }

    #[test]
    fn unknown_values_are_refused() {
        assert_eq!(
            parse(&hints(Some("secret"), None, None)).unwrap_err().hint,
            "security"
        );
        assert_eq!(
            parse(&hints(None, Some("urgent"), None)).unwrap_err().hint,
            "priority"
        );
        assert_eq!(
            parse(&hints(None, None, Some("-5"))).unwrap_err().hint,
            "slo_ms"
        );
        assert_eq!(
            parse(&hints(None, None, Some("soon"))).unwrap_err().hint,
            "slo_ms"
        );
    }
}
