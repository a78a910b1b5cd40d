//! Endpoint event filters: `*`, `family.*` (`record.*`) and exact event types
//! (`stream.started`).

use recnode_proto::hook::v1::{EVENT_TYPES, EVENT_TYPE_FAMILIES};

/// Which event types an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    all: bool,
    families: Vec<String>,
    types: Vec<String>,
}

impl EventFilter {
    /// A filter that passes every event.
    pub fn all() -> EventFilter {
        EventFilter {
            all: true,
            families: Vec::new(),
            types: Vec::new(),
        }
    }

    /// Parses patterns; an unknown type or family, or an empty list, is refused with a
    /// message naming it.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<EventFilter, String> {
        if patterns.is_empty() {
            return Err("must list at least one event type or pattern (\"*\" for all)".into());
        }
        let mut filter = EventFilter {
            all: false,
            families: Vec::new(),
            types: Vec::new(),
        };
        for pattern in patterns {
            let pattern = pattern.as_ref();
            if pattern == "*" {
                filter.all = true;
            } else if let Some(family) = pattern.strip_suffix(".*") {
                if !EVENT_TYPE_FAMILIES.contains(&family) {
                    return Err(format!(
                        "unknown event family in {pattern:?} (known: {})",
                        EVENT_TYPE_FAMILIES.join(", ")
                    ));
                }
                filter.families.push(family.to_string());
            } else if EVENT_TYPES.contains(&pattern) {
                filter.types.push(pattern.to_string());
            } else {
                return Err(format!(
                    "unknown event type {pattern:?} (use a type such as \"record.started\", \
                     a family pattern such as \"record.*\", or \"*\")"
                ));
            }
        }
        Ok(filter)
    }

    /// Whether an event of this type passes.
    pub fn matches(&self, event_type: &str) -> bool {
        self.all
            || self.types.iter().any(|t| t == event_type)
            || event_type
                .split_once('.')
                .is_some_and(|(family, _)| self.families.iter().any(|f| f == family))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_types_families_and_everything() {
        let f = EventFilter::parse(&["record.*", "stream.started"]).expect("valid");
        assert!(f.matches("record.started"));
        assert!(f.matches("record.segment"));
        assert!(f.matches("stream.started"));
        assert!(!f.matches("stream.stopped"));
        assert!(!f.matches("node.joined"));
        assert!(!f.matches("recordx.started"));
        let all = EventFilter::parse(&["*"]).expect("valid");
        assert!(all.matches("node.left") && all.matches("unknown"));
        assert_eq!(all, EventFilter::all());
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(EventFilter::parse(&["record.nope"])
            .unwrap_err()
            .contains("record.nope"));
        assert!(EventFilter::parse(&["nope.*"])
            .unwrap_err()
            .contains("nope.*"));
        assert!(EventFilter::parse::<&str>(&[]).is_err());
        assert!(EventFilter::parse(&["record"]).is_err());
    }
}
