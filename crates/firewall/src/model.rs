//! (owned by the ruleset work: the service model and the rendered ruleset)
